#!/usr/bin/env bash
# Renders docs/images/<dashboard>.png from live data: runs etcd-monitor/tests/it/stack/dashboards.rs (real etcd, the
# exporter, Prometheus, a bench run, and the faults that test makes), which writes every dashboard with its
# query results when ETCD_MONITOR_DASHBOARD_DUMP is set, then draws them with scripts/render-dashboards.py.
# Not part of `make test`: it installs matplotlib (PyPI) when missing, as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import matplotlib' >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "render-dashboards: matplotlib is missing: python3 -m pip install matplotlib" >&2
    exit 1
  fi
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore matplotlib
fi
dump=$(mktemp -d)
trap 'rm -rf "$dump"' EXIT
ETCD_MONITOR_DASHBOARD_DUMP="$dump" cargo test -q -p etcd-monitor --test it -- stack::dashboards
python3 scripts/render-dashboards.py "$dump" docs/images
