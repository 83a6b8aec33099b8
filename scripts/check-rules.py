#!/usr/bin/env python3
"""Checks what promtool does not: every alert in rules/*.rules.yml

- has the labels and annotations the project promises (severity in critical|warning|info, summary,
  description, runbook_url),
- has a runbook_url whose anchor is a heading of docs/runbooks.md,
- is tested in rules/tests/*.yml both firing (an exp_alerts entry) and not firing (an alert_rule_test
  with no exp_alerts), and every rule file has a test file that loads it.

One line per problem, naming the file and the alert; exit 1 if any.
"""
import glob
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNBOOK_PREFIX = "https://github.com/etcd-monitor/etcd-monitor/blob/main/docs/runbooks.md#"
SEVERITIES = {"critical", "warning", "info"}


def github_anchor(heading: str) -> str:
    # GitHub's rule: lower-case, drop punctuation except '-' and '_', spaces become '-'.
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def main() -> int:
    problems = []
    with open(os.path.join(ROOT, "docs", "runbooks.md"), encoding="utf-8") as f:
        anchors = {github_anchor(m.group(1)) for m in re.finditer(r"^#+\s+(.+)$", f.read(), re.M)}

    alerts = {}  # name -> file
    loaded = set()
    for path in sorted(glob.glob(os.path.join(ROOT, "rules", "*.rules.yml"))):
        rel = os.path.relpath(path, ROOT)
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                name = rule.get("alert")
                if not name:
                    continue
                alerts.setdefault(name, rel)
                labels = rule.get("labels") or {}
                ann = rule.get("annotations") or {}
                if labels.get("severity") not in SEVERITIES:
                    problems.append(f"{rel}: {name}: severity must be one of {sorted(SEVERITIES)}")
                for key in ("summary", "description", "runbook_url"):
                    if not ann.get(key):
                        problems.append(f"{rel}: {name}: annotation {key} is missing")
                url = ann.get("runbook_url", "")
                if url:
                    if not url.startswith(RUNBOOK_PREFIX):
                        problems.append(f"{rel}: {name}: runbook_url must point into docs/runbooks.md")
                    elif url[len(RUNBOOK_PREFIX):] not in anchors:
                        problems.append(f"{rel}: {name}: docs/runbooks.md has no heading for #{url[len(RUNBOOK_PREFIX):]}")

    firing, silent = set(), set()
    for path in sorted(glob.glob(os.path.join(ROOT, "rules", "tests", "*.yml"))):
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for rf in doc.get("rule_files", []):
            loaded.add(os.path.normpath(os.path.join(os.path.dirname(path), rf)))
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []) or []:
                (firing if case.get("exp_alerts") else silent).add(case.get("alertname"))

    for name, rel in sorted(alerts.items()):
        if name not in firing:
            problems.append(f"{rel}: {name}: no test expects it to fire (rules/tests/*.yml)")
        if name not in silent:
            problems.append(f"{rel}: {name}: no test expects it not to fire (rules/tests/*.yml)")
    for path in sorted(glob.glob(os.path.join(ROOT, "rules", "*.rules.yml"))):
        if os.path.normpath(path) not in loaded:
            problems.append(f"{os.path.relpath(path, ROOT)}: no test file in rules/tests loads it")

    for p in problems:
        print(f"check-rules: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"check-rules: {len(alerts)} alerts, each with severity, summary, description, runbook and tests firing and not firing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
