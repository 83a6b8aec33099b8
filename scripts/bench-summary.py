#!/usr/bin/env python3
"""make bench's one table: reads the "bench-summary: {json}" lines the bench-*.sh scripts print (from the
files named, or stdin) and sets each figure against issue 13's target. Every ratio is ours / the
reference's, both measured in the same run, as the scripts measure them."""
import json
import sys

PREFIX = "bench-summary: "

# Issue 13's targets: (label, figure, reference, comparison, target).
def rows(alerter, scale, exporter, bench):
    out = []
    if alerter:
        a, p = alerter["alerter"], alerter["prometheus"]
        ref = f"Prometheus 2.42, {alerter['rules']} rules, {alerter['targets']} targets"
        out += [
            ("alerter CPU", a["cpu_s"] / p["cpu_s"], ref, "<=", 0.33),
            ("alerter RSS", a["rss_mib"] / p["rss_mib"], ref, "<=", 0.2),
            ("alerter rule-set evaluation", a["eval_ms"] / p["eval_ms"], ref, "<=", 0.1),
        ]
    for s in scale:
        a, p = s["alerter"], s["prometheus"]
        ref = f"Prometheus 2.42, {s['rules']} rules, {s['targets']} targets"
        out += [
            (f"alerter CPU @{s['targets']} targets", a["cpu_s"] / p["cpu_s"], ref, "<=", 0.33),
            (f"alerter RSS @{s['targets']} targets", a["rss_mib"] / p["rss_mib"], ref, "<=", 0.2),
            (f"alerter evaluation @{s['targets']} targets", a["eval_ms"] / p["eval_ms"], ref, "<=", 0.1),
        ]
    if exporter:
        out += [
            ("exporter RSS, 3 members passed through (MiB)", exporter["rss_mib"], "absolute, after wrk -c4", "<=", 20),
            # "Stays where it is": the README's figure before issue 13 (the issue quotes 0.14 from one run).
            ("exporter /metrics p99 vs etcd's own", exporter["p99_ratio"], "etcd 3.5 /metrics, wrk -c4", "<=", 0.2),
        ]
        growth = exporter.get("growth_rss_mib", {})
        for n in sorted(growth, key=int):
            target = 40 if int(n) == 10 else None
            out.append((f"exporter RSS, {n} single-member clusters (MiB)", growth[n], "absolute, after wrk -c4", "<=", target))
    if bench:
        out += [
            ("bench client CPU per 1000 requests", bench["cpu_per_1000_ratio"], "etcdctl check perf --load=l", "<=", 0.5),
            ("bench throughput", bench["throughput_ratio"], "etcdctl check perf --load=l", ">=", 1.1),
            ("bench --rate held", bench["rate_held"], "its --rate", "within 1%", 0.01),
        ]
    return out


def verdict(value, op, target):
    if target is None:
        return ""
    ok = {"<=": value <= target, ">=": value >= target, "within 1%": abs(value - 1) <= target}[op]
    return "pass" if ok else "FAIL"


def main():
    lines = []
    for name in sys.argv[1:] or ["-"]:
        lines += (sys.stdin if name == "-" else open(name)).read().splitlines()
    found = [json.loads(l[len(PREFIX):]) for l in lines if l.startswith(PREFIX)]
    alerters = [s for s in found if s["bench"] == "alerter"]
    # The first alerter run is the comparison on the default rules; later ones are the scale runs.
    alerter, scale = (alerters[0], alerters[1:]) if alerters else (None, [])
    exporter = next((s for s in found if s["bench"] == "exporter"), None)
    bench = next((s for s in found if s["bench"] == "bench"), None)
    table = rows(alerter, scale, exporter, bench)
    if not table:
        print("bench-summary: no bench-summary lines found", file=sys.stderr)
        return 1
    print("| target (issue 13) | reached | reference (same run) | target | result |")
    print("|---|---|---|---|---|")
    for label, value, ref, op, target in table:
        shown = "" if target is None else (f"{op} {target}" if op != "within 1%" else "within 1%")
        print(f"| {label} | {value:.3f} | {ref} | {shown} | {verdict(value, op, target)} |")
    if len(scale) >= 2:
        print()
        print("alerter scale (alerter / Prometheus, and each figure's growth from the smallest run):")
        print(f"| targets | rules | alerter CPU s | Prometheus CPU s | alerter RSS MiB | Prometheus RSS MiB | alerter eval ms | Prometheus eval ms |")
        print("|---|---|---|---|---|---|---|---|")
        base = scale[0]
        for s in scale:
            a, p = s["alerter"], s["prometheus"]
            def g(who, key):
                b = base[who][key]
                return f"{s[who][key]:.2f} (×{s[who][key] / b:.1f})" if b else f"{s[who][key]:.2f}"
            print(f"| {s['targets']} | {s['rules']} | {g('alerter', 'cpu_s')} | {g('prometheus', 'cpu_s')} | "
                  f"{g('alerter', 'rss_mib')} | {g('prometheus', 'rss_mib')} | {g('alerter', 'eval_ms')} | {g('prometheus', 'eval_ms')} |")
    loads = {s["bench"]: s.get("load") for s in found}
    print(f"\n(shared machine: load averages at the end of each run: {loads})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
