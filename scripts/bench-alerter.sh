#!/usr/bin/env bash
# Benchmark: `etcd-monitor alerter` against Prometheus 2.42 (Debian's `prometheus`) on the same machine in
# one run, both reading the SAME configuration file (the alerter reads a subset of Prometheus' format):
# the etcd mixin's 15 rules, the same 3 targets (a real 3-member etcd cluster on loopback, each member's own
# /metrics). Reports, over the same window:
#   - resident memory (VmRSS at the end, VmHWM peak) and CPU seconds (utime+stime) of each, and ratios;
#   - the time to evaluate the rule set (the group's last evaluation duration, averaged over the window:
#     prometheus_rule_group_last_duration_seconds vs etcd_alerter_rule_group_last_duration_seconds).
# Usage: scripts/bench-alerter.sh [BIN]   (BIN defaults to target/release/etcd-monitor)
#        DURATION=120 INTERVAL=5s RULES="a.yml b.yml" JOBS=1 scripts/bench-alerter.sh
# RULES is one or more rule files; JOBS scrape jobs each list the same 3 members (JOBS=10: 30 targets).
# The last line, "bench-summary: {json}", is what scripts/bench-summary.py reads.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/cluster.sh
. scripts/lib/cluster.sh
BIN=${1:-target/release/etcd-monitor}
DURATION=${DURATION:-120}
INTERVAL=${INTERVAL:-5s}
MIXIN=../shared/conformance/etcd-mixin/manifests/etcd-prometheusRules.yaml
# The mixin when the conformance checkout is beside this one; otherwise the shipped rules.
if [ -z "${RULES:-}" ] && [ ! -f "$MIXIN" ]; then
  echo "bench-alerter: the etcd mixin ($MIXIN) is absent: benchmarking the project's own rules instead;" \
    "these figures do not compare with the README's" >&2
  MIXIN="$(ls rules/*.yml | tr '\n' ' ')"
fi
RULES=${RULES:-$MIXIN}
JOBS=${JOBS:-1}
[ -x "$BIN" ] || { echo "bench-alerter: $BIN is missing: cargo build --release -p etcd-monitor" >&2; exit 1; }
for f in $RULES; do [ -f "$f" ] || { echo "bench-alerter: $f is missing (set RULES=...)" >&2; exit 1; }; done
command -v prometheus >/dev/null || { echo "bench-alerter: prometheus is missing: apt-get install prometheus" >&2; exit 1; }
ETCD=$(etcd_bin 3.5 2>/dev/null || etcd_bin 3.4)

DIR=$(mktemp -d -t etcd-monitor-bench-alerter.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

start_etcd_cluster "$ETCD"

n=0; FILES=""; for f in $RULES; do n=$((n + 1)); cp "$f" "$DIR/rules-$n.yml"; FILES="$FILES${FILES:+, }rules-$n.yml"; done
{
  printf 'global:\n  scrape_interval: %s\n  evaluation_interval: %s\nrule_files: [%s]\nscrape_configs:\n' "$INTERVAL" "$INTERVAL" "$FILES"
  for j in $(seq "$JOBS"); do
    printf '  - job_name: etcd-%s\n    static_configs:\n      - targets: [127.0.0.1:%s, 127.0.0.1:%s, 127.0.0.1:%s]\n' "$j" "${C[@]}"
  done
} >"$DIR/prometheus.yml"
NRULES=$(cat "$DIR"/rules-*.yml | grep -cE '^\s*- (alert|record):')

PROM_PORT=$(free_port); ALERTER_PORT=$(free_port)
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$DIR/prometheus.log" 2>&1 &
PROM_PID=$!; PIDS+=($PROM_PID)
"$BIN" alerter --config "$DIR/prometheus.yml" --listen "127.0.0.1:$ALERTER_PORT" --log-level warn \
  >"$DIR/alerter.log" 2>&1 &
ALERTER_PID=$!; PIDS+=($ALERTER_PID)
for port in "$PROM_PORT" "$ALERTER_PORT"; do
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
done
sleep 20 # warm-up: first scrapes and evaluations, Prometheus' head block

TCK=$(getconf CLK_TCK)
cpu() { awk -v t="$TCK" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
group_duration() { # $1 url, $2 metric: the sum over groups of the last evaluation duration
  curl -s "$1" | awk -v m="$2" 'index($0, m) == 1 {s += $NF} END {printf "%.9f", s}'
}
P_CPU0=$(cpu $PROM_PID); A_CPU0=$(cpu $ALERTER_PID)
P_SUM=0; A_SUM=0; N=0
END=$((SECONDS + DURATION))
while [ $SECONDS -lt $END ]; do
  p=$(group_duration "http://127.0.0.1:$PROM_PORT/metrics" prometheus_rule_group_last_duration_seconds)
  a=$(group_duration "http://127.0.0.1:$ALERTER_PORT/metrics" etcd_alerter_rule_group_last_duration_seconds)
  P_SUM=$(python3 -c "print($P_SUM + $p)"); A_SUM=$(python3 -c "print($A_SUM + $a)"); N=$((N + 1))
  sleep "${INTERVAL%s}"
done
P_CPU1=$(cpu $PROM_PID); A_CPU1=$(cpu $ALERTER_PID)
P_RSS=$(kb $PROM_PID VmRSS); A_RSS=$(kb $ALERTER_PID VmRSS)
P_HWM=$(kb $PROM_PID VmHWM); A_HWM=$(kb $ALERTER_PID VmHWM)
HEALTH=$(curl -s "http://127.0.0.1:$ALERTER_PORT/api/v1/rules" | python3 -c '
import json, sys
g = json.load(sys.stdin)["data"]["groups"]
print(sum(r["health"] == "ok" for x in g for r in x["rules"]), "of", sum(len(x["rules"]) for x in g))')

python3 - "$DURATION" "$NRULES" "$P_CPU0" "$P_CPU1" "$A_CPU0" "$A_CPU1" "$P_RSS" "$A_RSS" "$P_HWM" "$A_HWM" "$P_SUM" "$A_SUM" "$N" "$HEALTH" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$((JOBS * 3))" <<'PY'
import json, sys
(dur, nrules, p0, p1, a0, a1, prss, arss, phwm, ahwm, psum, asum, n, health, cores, load, targets) = sys.argv[1:]
pc, ac = float(p1) - float(p0), float(a1) - float(a0)
pe, ae = float(psum) / int(n) * 1e3, float(asum) / int(n) * 1e3
print(f"bench-alerter: {nrules} rules, {targets} etcd targets, {dur} s window, {cores} cores, load {load}; alerter rules healthy: {health}")
print(f"{'':28}{'Prometheus 2.42':>18}{'etcd-monitor alerter':>22}{'ratio (alerter/Prometheus)':>28}")
print(f"{'CPU seconds over window':28}{pc:>18.2f}{ac:>22.2f}{ac / pc if pc else float('nan'):>28.3f}")
print(f"{'RSS at end (MiB)':28}{int(prss) / 1024:>18.1f}{int(arss) / 1024:>22.1f}{int(arss) / int(prss):>28.3f}")
print(f"{'peak RSS (MiB)':28}{int(phwm) / 1024:>18.1f}{int(ahwm) / 1024:>22.1f}{int(ahwm) / int(phwm):>28.3f}")
print(f"{'rule-set evaluation (ms)':28}{pe:>18.3f}{ae:>22.3f}{ae / pe if pe else float('nan'):>28.3f}")
summary = {"bench": "alerter", "rules": int(nrules), "targets": int(targets), "load": load,
           "prometheus": {"cpu_s": pc, "rss_mib": int(prss) / 1024, "eval_ms": pe},
           "alerter": {"cpu_s": ac, "rss_mib": int(arss) / 1024, "eval_ms": ae}}
print("bench-summary: " + json.dumps(summary))
PY
