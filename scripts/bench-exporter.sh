#!/usr/bin/env bash
# make bench-exporter: on a real 3-member etcd cluster on loopback, measures
#   1. /metrics latency under load (wrk, 4 connections, 15 s) of the exporter against etcd's own /metrics,
#      on the same machine in the same run, as ratios (with and without the member pass-through);
#   2. the exporter's resident memory (VmRSS) after the load;
#   3. the etcd requests one snapshot costs (gRPC calls counted by etcd itself, per snapshot);
#   4. how the exporter's RSS grows with clusters: 1, 5, 10 single-member clusters in one --config (GROWTH),
#      each after the same wrk load on /metrics.
# The last line, "bench-summary: {json}", is what scripts/bench-summary.py reads.
set -euo pipefail
# shellcheck source=scripts/lib/cluster.sh
. "$(dirname "$0")/lib/cluster.sh"
BIN=${1:-target/release/etcd-monitor}
DURATION=${DURATION:-15s}
GROWTH=${GROWTH:-1 5 10}
ETCD=$(etcd_bin 3.5 2>/dev/null || etcd_bin 3.4)
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

DIR=$(mktemp -d -t etcd-monitor-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

start_etcd_cluster "$ETCD"

start_exporter() { # $1 port, $2 member-metrics on|off
  "$BIN" exporter --endpoints="$ENDPOINTS" --listen="127.0.0.1:$1" --health-check-interval=1s \
    --metrics-interval=1s --member-metrics="$2" --log-level=warn >"$DIR/exporter-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/-/ready" >/dev/null && break; sleep 0.1; done
  sleep 2.5 # one pass-through round
}
E1=$(free_port); E2=$(free_port)
start_exporter "$E1" on; PID_ON=${PIDS[-1]}
start_exporter "$E2" off

# wrk's latency report in microseconds: p50 p99 and requests/s.
measure() {
  wrk -t1 -c4 -d"$DURATION" --latency "$1" 2>/dev/null | python3 -c '
import re, sys
text = sys.stdin.read()
def us(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
p = {m.group(1): us(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+(\S+)", text, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
print(p["50"], p["99"], rps)'
}
size() { curl -s "$1" | wc -c; }

read -r E_P50 E_P99 E_RPS < <(measure "http://127.0.0.1:${C[0]}/metrics")
read -r ON_P50 ON_P99 ON_RPS < <(measure "http://127.0.0.1:$E1/metrics")
read -r OFF_P50 OFF_P99 OFF_RPS < <(measure "http://127.0.0.1:$E2/metrics")
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$PID_ON/status")

# etcd's gRPC calls per snapshot, counted by etcd (all members), against the exporters' own count of
# snapshots over the same window: both exporters run snapshots, so the calls are divided by the sum.
grpc_calls() {
  local total=0
  for c in "${C[@]}"; do
    n=$(curl -s "http://127.0.0.1:$c/metrics" | awk '/^grpc_server_handled_total/ {s += $2} END {printf "%d", s}')
    total=$((total + n))
  done
  echo "$total"
}
snapshots() {
  local total=0
  for e in "$E1" "$E2"; do
    n=$(curl -s "http://127.0.0.1:$e/metrics" | awk '/^etcd_exporter_snapshot_duration_seconds_count/ {printf "%d", $2}')
    total=$((total + n))
  done
  echo "$total"
}
G0=$(grpc_calls); S0=$(snapshots); sleep 10; G1=$(grpc_calls); S1=$(snapshots)
ESZ=$(size "http://127.0.0.1:${C[0]}/metrics"); ONSZ=$(size "http://127.0.0.1:$E1/metrics"); OFFSZ=$(size "http://127.0.0.1:$E2/metrics")
kill "$PID_ON" "${PIDS[-1]}" # both exporters: the growth runs measure one exporter at a time

# Growth: single-member clusters, one exporter at a time over the first N of them.
MAX=$(printf '%s\n' $GROWTH | sort -n | tail -1)
SINGLE=()
for i in $(seq "$MAX"); do
  c=$(free_port); p=$(free_port); SINGLE+=("$c")
  "$ETCD" --name "s$i" --data-dir "$DIR/s$i" --listen-client-urls "http://127.0.0.1:$c" \
    --advertise-client-urls "http://127.0.0.1:$c" --listen-peer-urls "http://127.0.0.1:$p" \
    --initial-advertise-peer-urls "http://127.0.0.1:$p" --initial-cluster "s$i=http://127.0.0.1:$p" \
    --logger zap --log-level error >"$DIR/s$i.log" 2>&1 &
  PIDS+=($!)
done
for c in "${SINGLE[@]}"; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$c/health" | grep -q true && break; sleep 0.1; done
done
GROWTH_KB=()
for n in $GROWTH; do
  { echo "clusters:"; for i in $(seq "$n"); do echo "  - {name: s$i, endpoints: [127.0.0.1:${SINGLE[$((i - 1))]}]}"; done; } >"$DIR/clusters-$n.yml"
  port=$(free_port)
  "$BIN" exporter --config="$DIR/clusters-$n.yml" --listen="127.0.0.1:$port" --health-check-interval=1s \
    --metrics-interval=1s --log-level=warn >"$DIR/exporter-growth-$n.log" 2>&1 &
  pid=$!; PIDS+=($pid)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
  sleep 2.5
  wrk -t1 -c4 -d5s "http://127.0.0.1:$port/metrics" >/dev/null 2>&1
  GROWTH_KB+=("$n:$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")")
  kill "$pid"
done

python3 - "$E_P50" "$E_P99" "$E_RPS" "$ON_P50" "$ON_P99" "$ON_RPS" "$OFF_P50" "$OFF_P99" "$OFF_RPS" \
  "$RSS_KB" "$G0" "$G1" "$S0" "$S1" "$ESZ" "$ONSZ" "$OFFSZ" "${GROWTH_KB[*]}" <<'PY'
import json, sys
growth = {int(n): int(kb) / 1024 for n, kb in (x.split(":") for x in sys.argv[-1].split())}
a = [float(x) for x in sys.argv[1:-1]]
ep50, ep99, erps, onp50, onp99, onrps, offp50, offp99, offrps, rss, g0, g1, s0, s1, esz, onsz, offsz = a
print("| /metrics under load (wrk -t1 -c4) | body | p50 | p99 | req/s | p50 ratio | p99 ratio |")
print("|---|---|---|---|---|---|---|")
print(f"| etcd 3.5 member's own /metrics | {esz/1024:.0f} KiB | {ep50/1e3:.2f} ms | {ep99/1e3:.2f} ms | {erps:.0f} | 1 | 1 |")
print(f"| exporter, 3 members passed through | {onsz/1024:.0f} KiB | {onp50/1e3:.2f} ms | {onp99/1e3:.2f} ms | {onrps:.0f} | {onp50/ep50:.2f} | {onp99/ep99:.2f} |")
print(f"| exporter, --member-metrics=off | {offsz/1024:.0f} KiB | {offp50/1e3:.2f} ms | {offp99/1e3:.2f} ms | {offrps:.0f} | {offp50/ep50:.2f} | {offp99/ep99:.2f} |")
print()
print(f"exporter RSS after the load (pass-through on, 3 members): {rss/1024:.1f} MiB")
snaps = s1 - s0
print(f"etcd gRPC calls per snapshot: {(g1-g0)/snaps:.1f} ({int(g1-g0)} calls for {int(snaps)} snapshots, counted by etcd's grpc_server_handled_total)")
print("exporter RSS by single-member clusters in one --config: " + ", ".join(f"{n}: {m:.1f} MiB" for n, m in sorted(growth.items())))
summary = {"bench": "exporter", "rss_mib": rss / 1024, "p50_ratio": onp50 / ep50, "p99_ratio": onp99 / ep99,
           "growth_rss_mib": growth, "load": open("/proc/loadavg").read().split()[:3]}
print("bench-summary: " + json.dumps(summary))
PY
