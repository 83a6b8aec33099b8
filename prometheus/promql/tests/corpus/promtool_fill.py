#!/usr/bin/env python3
"""Builds the PromQL conformance corpus from specs, taking every expectation from promtool.

For each spec in spec/NAME.yml this runs `promtool test rules` (Prometheus 2.42, the
reference) on each test group with empty expectations, reads the `got:` (or `err:`) that
promtool prints for every expression, and writes:

- NAME.yml: a promtool unit-test file whose `exp_samples` are promtool's own results;
  `promtool test rules prometheus/promql/tests/corpus/*.yml` must pass on it;
- reference/NAME.yml: the cases promtool's file format cannot express (evaluation errors,
  and results containing NaN, which promtool's exact comparison never accepts), with
  promtool's error message or values.

Nothing here is computed by our evaluator: the Rust test (tests/it/corpus.rs) compares the
evaluator against these files.

Spec format:
    evaluation_interval: 1m
    groups:
      - name: what this group covers
        interval: 1m
        input_series: [{series: 'x{a="1"}', values: '0+1x10'}]
        eval_times: [5m]            # default for the group's exprs
        exprs:
          - rate(x[5m])
          - {expr: 'x offset 1m', eval_times: [2m, 3m]}

Usage: promtool_fill.py [spec/NAME.yml ...]   (default: every spec)
"""
import ast
import glob
import math
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def q(s):
    """YAML single-quoted scalar."""
    return "'" + str(s).replace("'", "''") + "'"


def fmt_float(v):
    if math.isnan(v):
        return ".nan"
    if math.isinf(v):
        return ".inf" if v > 0 else "-.inf"
    s = repr(float(v))
    if "e" in s:
        mant, exp = s.split("e")
        if "." not in mant:
            mant += ".0"
        s = mant + "e" + exp
    return s


def parse_got(text):
    """Parses promtool's `got:` list: `{a="1"} 1E+00, {} NaN` -> [(labels, value)]."""
    text = text.strip()
    if text == "nil":
        return []
    out = []
    i = 0
    n = len(text)
    while i < n:
        if text[i] != "{":
            raise ValueError("expected '{' at %d in %r" % (i, text))
        j = i + 1
        in_q = False
        while j < n:
            c = text[j]
            if in_q:
                if c == "\\":
                    j += 2
                    continue
                if c == '"':
                    in_q = False
            elif c == '"':
                in_q = True
            elif c == "}":
                break
            j += 1
        labels = text[i : j + 1]
        k = j + 2  # skip "} "
        end = text.find(", {", k)
        if end < 0:
            end = n
        val_s = text[k:end].strip()
        if val_s == "NaN":
            val = float("nan")
        elif val_s == "+Inf":
            val = float("inf")
        elif val_s == "-Inf":
            val = float("-inf")
        else:
            val = float(val_s)
        out.append((labels, val))
        i = end + 2 if end < n else n
    return out


def dur_ms(s):
    """Milliseconds of a Prometheus duration such as 1h2m3s, 300ms, 0s, 1d."""
    units = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000,
             "w": 604800000, "y": 31536000000}
    total, num, i = 0, "", 0
    s = s.strip()
    while i < len(s):
        c = s[i]
        if c.isdigit():
            num += c
            i += 1
            continue
        u = "ms" if s[i:i + 2] == "ms" else c
        total += int(num) * units[u]
        num = ""
        i += len(u)
    if num:
        raise ValueError("duration without unit: %r" % s)
    return total


def go_unquote(s):
    # Go's %q output is valid Python string-literal syntax for the characters we use.
    return ast.literal_eval(s)


def parse_promtool_output(out):
    """Returns a list of (expr, result) where result is ('err', msg) or ('got', samples)."""
    lines = out.splitlines()
    res = []
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith('expr: "'):
            # expr: "<go quoted>", time: 5m, err: ...   |  expr: "...", time: 5m,
            rest = s[len("expr: ") :]
            # find the end of the quoted string
            j = 1
            while j < len(rest):
                if rest[j] == "\\":
                    j += 2
                    continue
                if rest[j] == '"':
                    break
                j += 1
            expr = go_unquote(rest[: j + 1])
            tail = rest[j + 1 :]
            t = tail.split("time: ", 1)[1].split(",", 1)[0]
            expr = (expr, dur_ms(t))
            if ", err: " in tail:
                res.append((expr, ("err", tail.split(", err: ", 1)[1])))
                i += 1
                continue
            # next two lines: exp:, got:
            got_line = lines[i + 2].strip()
            if not got_line.startswith("got: "):
                raise ValueError("unexpected promtool output near: %r" % lines[i : i + 3])
            res.append((expr, ("got", parse_got(got_line[len("got: ") :]))))
            i += 3
            continue
        if s and not s.startswith("Unit Testing:") and s not in ("SUCCESS", "FAILED:"):
            raise RuntimeError("unexpected promtool output: %r" % line)
        i += 1
    return res


def emit_series(lines, indent, input_series):
    lines.append(indent + "input_series:")
    for s in input_series:
        lines.append(indent + "  - series: " + q(s["series"]))
        lines.append(indent + "    values: " + q(s["values"]))


def run_group(eval_interval, group, cases):
    """Runs promtool on one group with empty expectations; returns results per case."""
    lines = ["rule_files: []", "evaluation_interval: " + eval_interval, "tests:"]
    lines.append("  - interval: " + group.get("interval", "1m"))
    emit_series(lines, "    ", group["input_series"])
    lines.append("    promql_expr_test:")
    for expr, t in cases:
        lines.append("      - expr: " + q(expr))
        lines.append("        eval_time: " + t)
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        path = f.name
    try:
        p = subprocess.run(["promtool", "test", "rules", path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    if p.returncode != 0 and "FAILED" not in p.stdout + p.stderr:
        raise RuntimeError("promtool failed:\n" + p.stdout + p.stderr)
    printed = parse_promtool_output(p.stdout + "\n" + p.stderr)
    results = []
    pi = 0
    for expr, t in cases:
        if pi < len(printed) and printed[pi][0] == (expr, dur_ms(t)):
            results.append(printed[pi][1])
            pi += 1
        else:
            results.append(("got", []))  # passed with empty expectation: empty result
    if pi != len(printed):
        raise RuntimeError("could not map promtool output to cases: %r" % printed[pi:])
    return results


RUNS = 8


def run_group_stable(eval_interval, group, cases):
    """Runs promtool RUNS times. promtool iterates series in random (Go map) order, so
    sums and averages can differ in the last bits between runs; such results cannot be
    written as exact expectations and are marked 'unstable' (kept, with a tolerance, in
    reference/)."""
    runs = [run_group(eval_interval, group, cases) for _ in range(RUNS)]
    out = []
    for i in range(len(cases)):
        first = runs[0][i]
        if all(r[i][0] == "err" for r in runs):
            # Errors naming two series list them in (random) series order; the Rust test
            # leaves that pair out of the comparison.
            out.append(first)
            continue
        if any(r[i][0] == "err" for r in runs):
            print("  dropped (errs only in some runs): %r" % (cases[i],))
            out.append(("drop", None))
            continue
        label_sets = {tuple(l for l, _ in r[i][1]) for r in runs}
        if len(label_sets) > 1:
            # e.g. topk among equal values: which series wins depends on series order.
            print("  dropped (result series differ between runs): %r" % (cases[i],))
            out.append(("drop", None))
            continue
        same = all(repr(r[i]) == repr(first) for r in runs[1:])
        out.append(first if same else ("unstable", first[1]))
    return out


VERIFY_RUNS = 25


def expectation_lines(keep):
    lines = []
    for (expr, t), (kind, val) in keep:
        lines += ["      - expr: " + q(expr), "        eval_time: " + t]
        if val:
            lines.append("        exp_samples:")
            for labels, v in val:
                lines += ["          - labels: " + q(labels), "            value: " + fmt_float(v)]
    return lines


def flaky_cases(eval_interval, group, keep):
    """Runs promtool VERIFY_RUNS times on the group with its expectations; returns the
    (expr, eval_time_ms) that failed at least once. Order-dependent float rounding (sums,
    stddev, ...) can pass a few runs and fail the next; such cases must not be in a file
    that CI checks with promtool's exact comparison."""
    lines = ["rule_files: []", "evaluation_interval: " + eval_interval, "tests:",
             "  - interval: " + group.get("interval", "1m")]
    emit_series(lines, "    ", group["input_series"])
    lines.append("    promql_expr_test:")
    lines += expectation_lines(keep)
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        path = f.name
    bad = set()
    try:
        for _ in range(VERIFY_RUNS):
            p = subprocess.run(["promtool", "test", "rules", path], capture_output=True, text=True)
            if p.returncode != 0:
                for key, _ in parse_promtool_output(p.stdout + "\n" + p.stderr):
                    bad.add(key)
    finally:
        os.unlink(path)
    return bad


def build(spec_path):
    name = os.path.splitext(os.path.basename(spec_path))[0]
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    eval_interval = str(spec.get("evaluation_interval", "1m"))
    header = [
        "# GENERATED by promtool_fill.py from spec/%s.yml: every exp_samples entry is" % name,
        "# promtool 2.42's own result. Check: promtool test rules prometheus/promql/tests/corpus/*.yml",
    ]
    out = header + ["rule_files: []", "evaluation_interval: " + eval_interval, "tests:"]
    ref = [
        "# GENERATED by promtool_fill.py from spec/%s.yml: cases promtool's test format" % name,
        "# cannot express (errors, NaN results), with promtool 2.42's error or values.",
        "evaluation_interval: " + eval_interval,
        "tests:",
    ]
    n_cases = n_ref = 0
    for group in spec["groups"]:
        times = [str(t) for t in group.get("eval_times", ["5m"])]
        cases = []
        for e in group["exprs"]:
            # Multi-line rule expressions: promtool's YAML folds them onto one line.
            if isinstance(e, dict):
                for t in e.get("eval_times", times):
                    cases.append((e["expr"].strip().replace("\n", " "), str(t)))
            else:
                for t in times:
                    cases.append((e.strip().replace("\n", " "), t))
        results = run_group_stable(eval_interval, group, cases)
        max_all = max(dur_ms(t) for _, t in cases)

        def expressible(res):
            kind, val = res
            return kind == "got" and not any(math.isnan(v) for _, v in val)

        keep = [(c, r) for c, r in zip(cases, results) if expressible(r)]
        if keep and max(dur_ms(t) for (_, t), _ in keep) != max_all:
            # promtool only loads samples up to the group's last eval time: re-run the
            # expressible subset alone so the file reproduces under promtool.
            sub = [c for c, _ in keep]
            sub_res = run_group_stable(eval_interval, group, sub)
            keep = [(c, r) for c, r in zip(sub, sub_res) if expressible(r)]
            if len(keep) != len(sub):
                print("  note: %d cases dropped after re-run" % (len(sub) - len(keep)))
        original = {c: r for c, r in zip(cases, results)}
        unstable = []
        for _ in range(4):
            bad = flaky_cases(eval_interval, group, keep) if keep else set()
            if not bad:
                break
            moved = [c for c, _ in keep if (c[0], dur_ms(c[1])) in bad]
            print("  %d cases vary between promtool runs; kept in reference/ with a tolerance"
                  % len(moved))
            unstable += moved
            keep = [(c, r) for c, r in keep if (c[0], dur_ms(c[1])) not in bad]
            if keep and max(dur_ms(t) for (_, t), _ in keep) != max_all:
                sub = [c for c, _ in keep]
                sub_res = run_group_stable(eval_interval, group, sub)
                keep = [(c, r) for c, r in zip(sub, sub_res) if expressible(r)]
        else:
            raise RuntimeError("group %r does not stabilise under promtool" % group.get("name"))
        for c in unstable:
            kind, val = original[c]
            if kind == "got":
                results[cases.index(c)] = ("unstable", val)
        g_lines = []
        r_lines = []
        for (expr, t), (kind, val) in zip(cases, results):
            if kind == "drop":
                continue
            if kind == "err":
                r_lines += ["      - expr: " + q(expr), "        eval_time: " + t,
                            "        error: " + q(val)]
                continue
            if kind == "unstable" or any(math.isnan(v) for _, v in val):
                r_lines += ["      - expr: " + q(expr), "        eval_time: " + t,
                            "        samples:"]
                if not val:
                    r_lines[-1] += " []"
                for labels, v in val:
                    r_lines += ["          - labels: " + q(labels),
                                "            value: " + fmt_float(v)]
                continue
        g_lines = expectation_lines(keep)
        n_cases += len(keep)
        gname = group.get("name", "")
        if g_lines:
            out.append("  - name: " + q(gname))
            out.append("    interval: " + group.get("interval", "1m"))
            emit_series(out, "    ", group["input_series"])
            out.append("    promql_expr_test:")
            out += g_lines
        if r_lines:
            ref.append("  - name: " + q(gname))
            ref.append("    interval: " + group.get("interval", "1m"))
            # promtool loaded samples up to this group's last eval time when it ran these.
            ref.append("    load_until_eval_time: %dms" % max_all)
            emit_series(ref, "    ", group["input_series"])
            ref.append("    cases:")
            ref += r_lines
            n_ref += sum(1 for l in r_lines if l.startswith("      - expr: "))
    with open(os.path.join(HERE, name + ".yml"), "w") as f:
        f.write("\n".join(out) + "\n")
    ref_path = os.path.join(HERE, "reference", name + ".yml")
    if n_ref:
        with open(ref_path, "w") as f:
            f.write("\n".join(ref) + "\n")
    elif os.path.exists(ref_path):
        os.unlink(ref_path)
    p = subprocess.run(["promtool", "test", "rules", os.path.join(HERE, name + ".yml")],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("generated %s.yml does not pass promtool:\n%s" % (name, p.stdout[-3000:]))
    print("%s: %d promtool cases, %d reference-only cases" % (name, n_cases, n_ref))


def main():
    specs = sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, "spec", "*.yml")))
    for s in specs:
        build(s)


if __name__ == "__main__":
    main()
