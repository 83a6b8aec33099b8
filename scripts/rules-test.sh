#!/usr/bin/env bash
# Checks the alert rules in rules/ and runs their unit tests (rules/tests/*.yml) with promtool, the
# reference, and with `etcd-monitor alerter test`, which must agree with it. Also checks that every alert
# has its annotations, a runbook section and tests firing and not firing (scripts/check-rules.py), and that
# the Kubernetes PrometheusRule made from rules/ is in sync (scripts/gen-prometheusrule.py --check).
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
rules=(rules/*.rules.yml)
tests=(rules/tests/*.yml)
if [ ${#tests[@]} -eq 0 ]; then
  echo "rules-test: no rule tests yet (rules/tests/*.yml)"
  exit 0
fi

if [ ${#rules[@]} -gt 0 ]; then
  promtool check rules "${rules[@]}"
fi
promtool test rules "${tests[@]}"
python3 scripts/check-rules.py
if [ -f scripts/gen-prometheusrule.py ]; then
  python3 scripts/gen-prometheusrule.py --check
fi

# The alerter runs the same tests and must agree with promtool.
if [ -n "${ETCD_MONITOR_BIN:-}" ]; then
  bin="$ETCD_MONITOR_BIN"
else
  cargo build --quiet -p etcd-monitor   # a no-op when `make test` has just built it
  bin=target/debug/etcd-monitor
fi
"$bin" alerter test "${tests[@]}"

# The PromQL conformance corpus: its expected values are promtool's; promtool must still agree, and so
# must the alerter's own runner of the same files.
promtool test rules prometheus/promql/tests/corpus/*.yml
"$bin" alerter test prometheus/promql/tests/corpus/*.yml
