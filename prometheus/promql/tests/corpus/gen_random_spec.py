#!/usr/bin/env python3
"""Writes spec/random.yml: randomly generated (seeded, reproducible) PromQL expressions over
random series, for differential testing against promtool. Run promtool_fill.py afterwards
to record promtool's results.

Usage: gen_random_spec.py [SEED] [COUNT]
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 42
count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
# "rich": 15s samples, @ modifiers and offsets on subqueries, sub-minute eval times.
rich = len(sys.argv) > 3 and sys.argv[3] == "rich"
rnd = random.Random(seed)

METRICS = ["a", "b", "c_total"]
RANGES = ["1m", "2m", "5m", "10m"]
STEPS = ["", "1m", "30s", "2m"]


def values(n, counter=False):
    out, v = [], rnd.choice([0, 5, 100])
    for _ in range(n):
        r = rnd.random()
        if r < 0.08:
            out.append("_")
            continue
        if r < 0.11:
            out.append("stale")
            continue
        if counter:
            if rnd.random() < 0.05:
                v = rnd.randint(0, 5)
            else:
                v += rnd.randint(0, 20)
        else:
            v = round(rnd.uniform(-50, 50), rnd.choice([0, 1, 3]))
        out.append(str(v))
    return " ".join(out)


def series():
    out = []
    for m in METRICS:
        for job in ["x", "y"]:
            for inst in ["1", "2"]:
                if rnd.random() < 0.8:
                    out.append({"series": '%s{job="%s", instance="%s"}' % (m, job, inst),
                                "values": values(31, counter=m.endswith("_total"))})
    for job in ["x", "y"]:
        base = 0
        for le in ["0.1", "0.5", "1", "+Inf"]:
            base += rnd.randint(1, 10)
            out.append({"series": 'h_bucket{job="%s", le="%s"}' % (job, le),
                        "values": "0+%dx30" % base})
    return out


def sel(modifiers=True):
    m = rnd.choice(METRICS)
    ms = []
    for _ in range(rnd.randint(0, 2)):
        l = rnd.choice(["job", "instance"])
        op = rnd.choice(["=", "!=", "=~", "!~"])
        v = rnd.choice(["x", "y", "1", "2", "x|y", ".*", "1|3"])
        ms.append('%s%s"%s"' % (l, op, v))
    s = m + ("{%s}" % ", ".join(ms) if ms else "")
    if modifiers and rich and rnd.random() < 0.1:
        s += " @ %s" % rnd.choice(["300", "450.5", "start()", "end()", "100"])
    if modifiers and rnd.random() < 0.15:
        s += " offset %s" % rnd.choice(["1m", "3m", "30s"])
    return s


def range_sel():
    s = "%s[%s]" % (sel(False), rnd.choice(RANGES))
    if rnd.random() < 0.15:
        s += " offset %s" % rnd.choice(["1m", "5m"])
    return s


def scalar():
    return rnd.choice(["0", "1", "2", "0.5", "-1", "10", "100"])


RANGE_FNS = ["rate", "irate", "increase", "delta", "idelta", "deriv", "resets", "changes",
             "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
             "count_over_time", "last_over_time", "stddev_over_time", "stdvar_over_time",
             "present_over_time"]
FNS = ["abs", "ceil", "floor", "round", "sqrt", "exp", "ln", "sgn", "log2", "timestamp"]
AGGS = ["sum", "min", "max", "avg", "count", "stddev", "stdvar", "group"]
OPS = ["+", "-", "*", "/", "%", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless",
       "> bool", "== bool"]
MODS = ["", "", "", "on(job, instance)", "ignoring(instance)", "on(job) group_left",
        "on(job, instance) group_left", "ignoring(job) group_right"]
GROUPS = ["", " by (job)", " without (instance)", " by (instance)", " without (job)"]


def vexpr(d):
    if d <= 0:
        return sel()
    r = rnd.random()
    if r < 0.2:
        return sel()
    if r < 0.35:
        return "%s(%s)" % (rnd.choice(RANGE_FNS), range_sel())
    if r < 0.42:
        mod = ""
        if rich and rnd.random() < 0.4:
            mod = rnd.choice([" offset 2m", " @ 600", " @ end()", " offset 30s", " @ 400 offset 1m"])
        return "%s((%s)[%s:%s]%s)" % (rnd.choice(RANGE_FNS), vexpr(d - 1),
                                       rnd.choice(RANGES), rnd.choice(STEPS), mod)
    if r < 0.5:
        return "%s(%s)" % (rnd.choice(FNS), vexpr(d - 1))
    if r < 0.62:
        return "%s%s (%s)" % (rnd.choice(AGGS), rnd.choice(GROUPS), vexpr(d - 1))
    if r < 0.66:
        return "%s%s (%s, %s)" % (rnd.choice(["topk", "bottomk", "quantile"]),
                                  rnd.choice(GROUPS), rnd.choice(["1", "2", "0.5", "0.9"]),
                                  vexpr(d - 1))
    if r < 0.8:
        op = rnd.choice(OPS)
        mod = rnd.choice(MODS)
        if op in ("and", "or", "unless"):
            mod = rnd.choice(["", "on(job)", "ignoring(instance)"])
        return "(%s) %s %s (%s)" % (vexpr(d - 1), op, mod, vexpr(d - 1))
    if r < 0.88:
        op = rnd.choice([o for o in OPS if o not in ("and", "or", "unless")])
        if rnd.random() < 0.5:
            return "(%s) %s %s" % (vexpr(d - 1), op, scalar())
        return "%s %s (%s)" % (scalar(), op, vexpr(d - 1))
    if r < 0.91:
        return "histogram_quantile(%s, rate(h_bucket[%s]))" % (
            rnd.choice(["0.5", "0.9", "0.99"]), rnd.choice(RANGES))
    if r < 0.94:
        return 'label_replace(%s, "dst", "$1-z", "job", "(.*)")' % vexpr(d - 1)
    if r < 0.97:
        return "clamp(%s, %s, %s)" % (vexpr(d - 1), rnd.choice(["-10", "0"]), rnd.choice(["5", "20"]))
    if rich and rnd.random() < 0.5:
        extra = [
            lambda: "absent(%s)" % sel(),
            lambda: "absent_over_time(%s)" % range_sel(),
            lambda: "(%s) * scalar(%s)" % (vexpr(d - 1), vexpr(d - 1)),
            lambda: "sort_desc(%s)" % vexpr(d - 1),
            lambda: 'count_values("v", round(%s))' % vexpr(d - 1),
            lambda: "quantile_over_time(%s, %s)" % (rnd.choice(["0.1", "0.5", "0.99"]), range_sel()),
            lambda: "predict_linear(%s, %s)" % (range_sel(), rnd.choice(["60", "300", "-60"])),
            lambda: "holt_winters(%s, 0.3, 0.6)" % range_sel(),
            lambda: 'label_join(%s, "lj", ":", "job", "instance")' % vexpr(d - 1),
            lambda: "hour(vector(time())) + minute(%s)" % vexpr(d - 1),
            lambda: "timestamp(%s)" % sel(),
            lambda: "vector(scalar(sum(%s)))" % vexpr(d - 1),
            lambda: "clamp_min(%s, 0) - clamp_max(%s, 0)" % (vexpr(d - 1), vexpr(d - 1)),
            lambda: "sum by (le) (rate(h_bucket[5m])) / on(le) group_left sum(rate(h_bucket[5m]))",
        ]
        return rnd.choice(extra)()
    return "-(%s)" % vexpr(d - 1)


exprs = []
seen = set()
while len(exprs) < count:
    e = vexpr(rnd.randint(1, 3))
    if e not in seen:
        seen.add(e)
        exprs.append(e)

lines = [
    "# GENERATED by gen_random_spec.py %d %d: random expressions for differential testing." % (seed, count),
    "evaluation_interval: 1m",
    "groups:",
]
per_group = 50
for g in range(0, len(exprs), per_group):
    lines.append("  - name: 'random expressions %d-%d (seed %d)'" % (g, g + per_group - 1, seed))
    lines.append("    interval: %s" % ("15s" if rich else "1m"))
    lines.append("    input_series:")
    for s in series():
        lines.append("      - series: '%s'" % s["series"].replace("'", "''"))
        lines.append("        values: '%s'" % s["values"])
    times = ["7m", "12m", "20m", "29m"]
    if rich:
        times = ["2m", "3m15s", "5m", "7m30s", "7m45s"]
    lines.append("    eval_times: [%s]" % ", ".join(rnd.sample(times, 2)))
    lines.append("    exprs:")
    for e in exprs[g:g + per_group]:
        lines.append("      - '%s'" % e.replace("'", "''"))
name = "random_%s%d" % ("rich_" if rich else "", seed)
lines[0] = "# GENERATED by gen_random_spec.py %d %d%s: random expressions for differential testing." % (
    seed, count, " rich" if rich else "")
with open(os.path.join(HERE, "spec", name + ".yml"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("wrote spec/%s.yml with %d expressions" % (name, len(exprs)))
