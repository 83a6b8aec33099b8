#!/usr/bin/env python3
"""Validates the Prometheus Operator resources (ServiceMonitor, PodMonitor, PrometheusRule) in Kubernetes
manifests, which kubernetes-validate has no schema for.

The schemas are the operator's CRDs as typed by the PyPI package cloudcoil-models-prometheus-operator
(pydantic models generated from the CRDs' OpenAPI schemas: types, enums, patterns such as durations).
Those models ignore unknown fields, so after validation the document is dumped back and compared with the
input: a field that did not survive is unknown to the CRD (a typo) and reported. PrometheusRule groups
are also checked with `promtool check rules`, which knows PromQL.

    scripts/validate-k8s-crds.py FILE...
"""
import os
import subprocess
import sys
import tempfile

import yaml

try:
    from cloudcoil.models.prometheus_operator import v1 as promop
except ImportError:
    sys.exit("validate-k8s-crds: the PyPI package cloudcoil-models-prometheus-operator is missing (scripts/deps.sh)")

MODELS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): promop.ServiceMonitor,
    ("monitoring.coreos.com/v1", "PodMonitor"): promop.PodMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): promop.PrometheusRule,
}


def unknown_fields(given, kept, path=""):
    """Paths present in `given` but lost in `kept` (the model's dump)."""
    out = []
    if isinstance(given, dict):
        kept = kept if isinstance(kept, dict) else {}
        for k, v in given.items():
            p = f"{path}.{k}" if path else k
            if k not in kept:
                out.append(p)
            else:
                out.extend(unknown_fields(v, kept[k], p))
    elif isinstance(given, list):
        kept = kept if isinstance(kept, list) else []
        for i, v in enumerate(given):
            out.extend(unknown_fields(v, kept[i] if i < len(kept) else None, f"{path}[{i}]"))
    return out


def main(paths):
    problems, checked = [], 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            try:
                docs = [d for d in yaml.safe_load_all(f) if d]
            except yaml.YAMLError as e:
                problems.append(f"{path}: not YAML: {e}")
                continue
        for doc in docs:
            model = MODELS.get((doc.get("apiVersion"), doc.get("kind")))
            if model is None:
                continue
            name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
            try:
                obj = model.model_validate(doc)
            except Exception as e:  # pydantic.ValidationError: one line per error
                lines = [l for l in str(e).splitlines() if l and not l.startswith("    For further")]
                problems.append(f"{path}: {name}: " + " / ".join(lines))
                continue
            dumped = obj.model_dump(mode="json", by_alias=True, exclude_unset=True)
            for field in unknown_fields(doc, dumped):
                problems.append(f"{path}: {name}: unknown field {field}")
            if doc["kind"] == "PrometheusRule":
                with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as tmp:
                    yaml.safe_dump({"groups": doc["spec"].get("groups", [])}, tmp)
                try:
                    r = subprocess.run(["promtool", "check", "rules", tmp.name], capture_output=True, text=True)
                    if r.returncode != 0:
                        problems.append(f"{path}: {name}: promtool check rules: {r.stdout.strip()} {r.stderr.strip()}")
                finally:
                    os.unlink(tmp.name)
            checked += 1
    for p in problems:
        print(f"validate-k8s-crds: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"validate-k8s-crds: {checked} Prometheus Operator resources valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
