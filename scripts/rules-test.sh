#!/usr/bin/env bash
# Runs the project's rule unit tests with promtool (the reference) and, once it exists, with the alerter.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
tests=(rules/tests/*.yml)
if [ ${#tests[@]} -eq 0 ]; then
  echo "rules-test: no rule tests yet (rules/tests/*.yml)"
  exit 0
fi
promtool test rules "${tests[@]}"
