#!/usr/bin/env bash
# make bench-bench: is etcd-monitor's bench ever the bottleneck? In one run, on a fresh 3-member etcd 3.5
# cluster on loopback, it runs
#   1. `etcdctl check perf --load=l` (etcd 3.5's etcdctl: 500 clients, one connection each, 8000 puts/s,
#      60 s, 256-byte keys, 1 KiB values), the reference;
#   2. `etcd-monitor bench put --load=l`, the same shape (--clients=500 --conns=500 --rate=8000
#      --duration=60s --key-size=256 --val-size=1024, random keys);
#   3. `etcd-monitor bench put --rate=$FIXED_RATE` for 20 s,
# and reports, as ratios of 2 to 1, the throughput (successful puts per second, counted by etcd itself
# as revisions) and the client CPU seconds per 1000 requests (user + system, from the kernel's rusage of
# each client process); then 3's throughput against its target rate.
# The last line, "bench-summary: {json}", is what scripts/bench-summary.py reads.
# Usage: scripts/bench-bench.sh [path/to/release/etcd-monitor]   (LOAD=m DURATION... see below)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/etcd-monitor}
LOAD=${LOAD:-l}
FIXED_RATE=${FIXED_RATE:-1000}
[ -x "$BIN" ] || cargo build --release -p etcd-monitor
# shellcheck source=scripts/lib/cluster.sh
. scripts/lib/cluster.sh
ETCD=$(etcd_bin 3.5); ETCDCTL=$(etcd_bin 3.5 etcdctl)

DIR=$(mktemp -d -t etcd-monitor-bench-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
start_etcd_cluster "$ETCD"

# A long command timeout: right after a run, etcd may still be applying the clean-up delete of its keys.
ctl() { ETCDCTL_API=3 "$ETCDCTL" --endpoints="$ENDPOINTS" --command-timeout=120s "$@"; }
revision() { ctl get / -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])'; }

# Runs a command; prints "<successful puts> <wall seconds> <client cpu seconds>". Puts are the revisions
# the run added less its clean-up delete (one revision when it deleted keys).
measure() {
  local r0 r1 out
  r0=$(revision)
  out=$(python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
open("/dev/stderr", "w").write(p.stdout.decode(errors="replace")[-1500:])
print(f"{wall:.3f} {ru.ru_utime + ru.ru_stime:.3f}")
PY
)
  r1=$(revision)
  echo "$(( r1 - r0 - 1 )) $out"
}

echo "== etcdctl check perf --load=$LOAD (etcd 3.5's etcdctl)" >&2
read -r REF_PUTS REF_WALL REF_CPU < <(measure env ETCDCTL_API=3 "$ETCDCTL" --endpoints="$ENDPOINTS" check perf --load="$LOAD")
echo "== etcd-monitor bench put --load=$LOAD" >&2
read -r OUR_PUTS OUR_WALL OUR_CPU < <(measure "$BIN" bench put --endpoints="$ENDPOINTS" --load="$LOAD" --log-level=warn --output=json --results-dir="$DIR/results")
OUR_JSON=$(cat "$DIR"/results/*.json)
OUR_DURATION=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["duration_seconds"])' "$OUR_JSON")
echo "== etcd-monitor bench put --rate=$FIXED_RATE --duration=20s" >&2
FIXED_JSON=$("$BIN" bench put --endpoints="$ENDPOINTS" --rate="$FIXED_RATE" --duration=20s --clients=200 --conns=20 \
  --key-size=256 --val-size=1024 --key-space-size=100000 --log-level=warn --output=json)

python3 - "$REF_PUTS" "$REF_CPU" "$OUR_PUTS" "$OUR_CPU" "$OUR_DURATION" "$FIXED_RATE" "$FIXED_JSON" "$OUR_JSON" <<'PY'
import json, os, sys
ref_puts, ref_cpu, our_puts, our_cpu, our_dur, fixed_rate = map(float, sys.argv[1:7])
fixed, ours = json.loads(sys.argv[7]), json.loads(sys.argv[8])
print(f"etcd-monitor bench put --load: {ours['succeeded']} puts reported ({our_puts:.0f} by etcd's revisions), "
      f"{ours['errors']} errors {ours.get('error_codes') or ''}, {ours['late']} late, {ours['unsent']} unsent, latency p50 {ours['latency_seconds']['p50'] * 1000:.1f} ms "
      f"p99 {ours['latency_seconds']['p99'] * 1000:.1f} ms, service p99 {ours['service_time_seconds']['p99'] * 1000:.1f} ms")
# check perf measures 60 s of sending; ours reports its measured phase; both rates are puts etcd applied.
ref_rps, our_rps = ref_puts / 60.0, our_puts / our_dur
ref_cpu_k, our_cpu_k = ref_cpu / (ref_puts / 1000), our_cpu / (our_puts / 1000)
print(f"check perf:          {ref_rps:9.1f} puts/s   {ref_cpu_k:.4f} client CPU s / 1000 requests")
print(f"etcd-monitor bench:  {our_rps:9.1f} puts/s   {our_cpu_k:.4f} client CPU s / 1000 requests")
print(f"ratios (ours / check perf): throughput {our_rps / ref_rps:.3f}, CPU per 1000 requests {our_cpu_k / ref_cpu_k:.3f}")
print(f"fixed --rate {fixed_rate:.0f}/s: {fixed['requests_per_sec']:.1f} requests/s = {fixed['requests_per_sec'] / fixed_rate:.3f} of the target, "
      f"{fixed['late']} late, {fixed['unsent']} unsent, p99 {fixed['latency_seconds']['p99'] * 1000:.1f} ms (service p99 {fixed['service_time_seconds']['p99'] * 1000:.1f} ms)")
summary = {"bench": "bench", "throughput_ratio": our_rps / ref_rps, "cpu_per_1000_ratio": our_cpu_k / ref_cpu_k,
           "ref_cpu_per_1000_s": ref_cpu_k, "our_cpu_per_1000_s": our_cpu_k,
           "rate_held": fixed["requests_per_sec"] / fixed_rate, "load": os.getloadavg()}
print("bench-summary: " + json.dumps(summary))
PY
