#!/usr/bin/env bash
# The last line of `make test` / `make check`: how many tests were skipped for a missing peer, and which.
# Usage: scripts/test-summary.sh "make test" target/test-skips.log
# (Under CI=true a missing peer fails its test instead: the log stays empty.)
set -euo pipefail
what=$1 log=$2
if [ ! -s "$log" ]; then
  echo "$what: all checks passed, 0 skipped"
  exit 0
fi
# One line per test (a test may record several reasons).
mapfile -t skips < <(sort -u "$log")
tests=$(printf '%s\n' "${skips[@]}" | cut -d' ' -f2 | sed 's/:$//' | sort -u | wc -l)
echo "$what: all checks passed, $tests skipped (a peer is missing; CI=true makes these failures):"
printf '  %s\n' "${skips[@]}"
