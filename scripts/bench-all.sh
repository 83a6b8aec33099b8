#!/usr/bin/env bash
# make bench: the three comparisons one after the other (never at once: each measures ratios against a
# reference on the same machine), the alerter also at scale (the mixin's rules plus rules/ on 3 and on
# 30 targets), then one table from their "bench-summary:" lines. The full output is kept in $LOG.
# Usage: scripts/bench-all.sh [BIN]    SCALE_DURATION=60 LOG=path scripts/bench-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/etcd-monitor}
LOG=${LOG:-$(mktemp -t etcd-monitor-bench.XXXXXX.log)}
MIXIN=../shared/conformance/etcd-mixin/manifests/etcd-prometheusRules.yaml
SCALE_RULES="$( [ -f "$MIXIN" ] && echo "$MIXIN") $(ls rules/*.yml | tr '\n' ' ')"
{
  scripts/bench-alerter.sh "$BIN"
  for jobs in 1 10; do
    DURATION=${SCALE_DURATION:-60} RULES="$SCALE_RULES" JOBS=$jobs scripts/bench-alerter.sh "$BIN"
  done
  scripts/bench-exporter.sh "$BIN"
  scripts/bench-bench.sh "$BIN"
} 2>&1 | tee "$LOG"
echo
python3 scripts/bench-summary.py "$LOG"
echo "(full output: $LOG)"
