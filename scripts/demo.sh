#!/usr/bin/env bash
# make demo: a real 3-member etcd cluster on loopback in a temporary directory, etcd-monitor's exporter
# against it, the alerter and a scheduled bench, Prometheus (Debian's, from `make deps`) scraping them with
# the shipped rules, the URLs to open and a sample of the metrics. Ctrl-C stops everything.
set -euo pipefail
BIN=${1:-target/release/etcd-monitor}
ETCD_VERSION=${ETCD_VERSION:-3.5}

# shellcheck source=scripts/lib/cluster.sh
. "$(dirname "$0")/lib/cluster.sh"
ETCD=$(etcd_bin "$ETCD_VERSION")
[ -x "$ETCD" ] || { echo "etcd not found at $ETCD: run make deps" >&2; exit 1; }
PROMETHEUS=$(command -v prometheus) || { echo "prometheus not found: run make deps" >&2; exit 1; }

DIR=$(mktemp -d -t etcd-monitor-demo.XXXXXX)
PIDS=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping the demo..."
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup INT TERM EXIT

# The original design's ports: members on 2379, 22379, 32379 and the API on 8080, when they are free.
port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
pick() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }
API=$(pick 8080)
ALERTER=$(pick 8081)
BENCH=$(pick 9106)
PROM=$(pick 9090)

echo "starting a 3-member etcd cluster ($("$ETCD" --version | head -1)) in $DIR"
CLUSTER_TOKEN=demo CLUSTER_LOG_LEVEL=warn start_etcd_cluster "$ETCD" \
  "$(pick 2379):$(pick 2380)" "$(pick 22379):$(pick 22380)" "$(pick 32379):$(pick 32380)"

"$BIN" exporter --endpoints="$ENDPOINTS" --listen="127.0.0.1:$API" --cluster-name=demo \
  --health-check-interval=2s --metrics-interval=5s >"$DIR/exporter.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$API/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done

# The bench as a daemon: a small put workload every two minutes, results on its own /metrics.
"$BIN" bench put --endpoints="$ENDPOINTS" --schedule "*/2 * * * *" --listen="127.0.0.1:$BENCH" \
  --total 2000 --clients 10 --no-progress >"$DIR/bench.log" 2>&1 &
PIDS+=($!)

# The alerter with the project's rules, scraping the exporter and the bench, alerts to the console.
REPO=$(cd "$(dirname "$0")/.." && pwd)
cat >"$DIR/alerter.yml" <<EOC
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $REPO/rules/*.rules.yml
scrape_configs:
  - job_name: etcd-monitor
    static_configs:
      - targets: ['127.0.0.1:$API']
  - job_name: etcd-monitor-bench
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$BENCH']
EOC
cat >"$DIR/notify.yml" <<EOC
route:
  receiver: console
  group_by: [alertname, cluster]
  group_wait: 5s
  group_interval: 30s
  repeat_interval: 1h
receivers:
  - name: console
    console_configs:
      - send_resolved: true
EOC
"$BIN" alerter --config="$DIR/alerter.yml" --notify-config="$DIR/notify.yml" --listen="127.0.0.1:$ALERTER" \
  --state-file="$DIR/alerter-state.json" --log-level=warn 2>"$DIR/alerter.log" &
PIDS+=($!)

# Prometheus: the same scrape and the same rules, with graphs and an alerts page in the browser.
cat >"$DIR/prometheus.yml" <<EOC
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $REPO/rules/*.rules.yml
scrape_configs:
  - job_name: etcd-monitor
    static_configs:
      - targets: ['127.0.0.1:$API']
  - job_name: etcd-monitor-bench
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$BENCH']
EOC
"$PROMETHEUS" --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/prometheus" \
  --web.listen-address="127.0.0.1:$PROM" --log.level=warn >"$DIR/prometheus.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PROM/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$PROM/-/ready" >/dev/null 2>&1 \
  || { echo "Prometheus did not start; its log:" >&2; tail -20 "$DIR/prometheus.log" >&2; exit 1; }

cat <<EOT

etcd-monitor demo is running.
  etcd members:     http://127.0.0.1:${C[0]}  http://127.0.0.1:${C[1]}  http://127.0.0.1:${C[2]}
  metrics:          http://127.0.0.1:$API/metrics
  cluster status:   http://127.0.0.1:$API/api/v1/cluster/status
  members:          http://127.0.0.1:$API/api/v1/cluster/members
  leader:           http://127.0.0.1:$API/api/v1/cluster/leader
  probe latency:    http://127.0.0.1:$API/api/v1/metrics/latency
  history:          http://127.0.0.1:$API/api/v1/metrics/history
  alerter:          http://127.0.0.1:$ALERTER/api/v1/alerts   (rules: http://127.0.0.1:$ALERTER/api/v1/rules)
  bench results:    http://127.0.0.1:$BENCH/metrics   (run now: curl -XPOST http://127.0.0.1:$BENCH/api/v1/performance/benchmark)
  Prometheus:       http://127.0.0.1:$PROM   (the shipped rules' alerts: http://127.0.0.1:$PROM/alerts)
  a graph:          http://127.0.0.1:$PROM/graph?g0.expr=etcd_cluster_fault_tolerance&g0.tab=0
  logs:             $DIR/*.log
Try: stop one member (kill -STOP ${PIDS[1]}): etcd_cluster_fault_tolerance drops to 0 at once, and once the
rules' 'for' has passed (3 minutes for etcdClusterMemberDown, 5 for etcdClusterQuorumAtRisk) the alerter
prints them firing below and Prometheus' alerts page shows them; start it again (kill -CONT ${PIDS[1]})
and both resolve them.

A sample of the metrics:
EOT
curl -s "http://127.0.0.1:$API/metrics" | grep -E '^etcd_(cluster|member_up|member_is_leader|probe_duration_seconds_count)' | head -30
echo
echo "Press Ctrl-C to stop."
wait
