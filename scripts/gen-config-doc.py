#!/usr/bin/env python3
"""Fills the flag tables in docs/configuration.md from the binary's own `--help`, so the reference lists
exactly the flags, environment variables and defaults the binary has.

docs/configuration.md holds the prose; each table sits between markers naming the command:

    <!-- flags: exporter -->
    ...generated table...
    <!-- /flags -->

    scripts/gen-config-doc.py [BINARY]           rewrite the tables (BINARY: target/debug/etcd-monitor)
    scripts/gen-config-doc.py --check [BINARY]   exit 1 if a table differs from the binary's --help, or a
                                                 subcommand has no table
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "configuration.md")
MARK = re.compile(r"<!-- flags: ([a-z0-9 -]*) -->\n.*?<!-- /flags -->", re.S)
OPTION = re.compile(r"^\s{2,}(?:-\w, )?(--[\w.-]+)(?:[ =](\S+))?(?:\s{2,}(.*))?$")


def help_text(binary, args):
    # A clean environment: clap prints the values of set environment variables in the help.
    env = {"PATH": os.environ.get("PATH", ""), "COLUMNS": "400", "TERM": "dumb"}
    r = subprocess.run([binary, *args, "-h"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"gen-config-doc: {' '.join([binary, *args])} -h failed: {r.stderr.strip()}")
    return r.stdout


def subcommands(text):
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("Commands:"):
            inside = True
            continue
        if inside:
            if not line.strip():
                break
            name = line.split()[0]
            if name != "help":
                out.append(name)
    return out


def options(text):
    """(section, flag, value, description) in the order of the help."""
    out, section, current = [], "Options", None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            section = line[:-1]
            current = None
            continue
        m = OPTION.match(line)
        if m and line.lstrip().startswith("-"):
            flag, value, desc = m.group(1), m.group(2) or "", (m.group(3) or "").strip()
            if flag in ("--help", "--version"):
                current = None
                continue
            current = [section, flag, value, desc]
            out.append(current)
        elif current is not None and line.strip():
            current[3] = (current[3] + " " + line.strip()).strip()
        elif not line.strip():
            current = None
    return out


def table(opts):
    rows = ["| Flag | Environment | Default | Meaning |", "|---|---|---|---|"]
    for section, flag, value, desc in opts:
        env = re.search(r"\[env: ([A-Z0-9_]+)=?[^\]]*\]", desc)
        default = re.search(r"\[default: ([^\]]*)\]", desc)
        possible = re.search(r"\[possible values: ([^\]]*)\]", desc)
        alias = re.search(r"\[alias(?:es)?: ([^\]]*)\]", desc)
        text = re.sub(r"\s*\[(?:env|default|possible values|alias|aliases): [^\]]*\]", "", desc).strip()
        if possible:
            text += f" (one of: {possible.group(1)})"
        if alias:
            text += f" (alias {alias.group(1)})"
        value = value.strip("[]")
        shown = f"`{flag} {value}`" if value else f"`{flag}`"
        rows.append("| {} | {} | {} | {} |".format(
            shown,
            f"`{env.group(1)}`" if env else "",
            f"`{default.group(1)}`" if default else "",
            text.replace("|", "\\|"),
        ))
    return "\n".join(rows)


def all_commands(binary):
    """Every command path ('' for the top level) that has options of its own."""
    out, todo = [], [[]]
    while todo:
        args = todo.pop(0)
        text = help_text(binary, args)
        out.append((" ".join(args), text))
        for sub in subcommands(text):
            todo.append(args + [sub])
    return out


SHARED = ("Connection to etcd", "Logging")


def tables(binary):
    """Table name -> options. The connection and logging flags every command shares get one table each;
    the top level shows only the original design's flags it has beyond `exporter`'s; each bench workload
    only the flags it has beyond `bench put`'s."""
    helps = {name: options(text) for name, text in all_commands(binary)}
    out = {
        "connection": [o for o in helps.get("exporter", []) if o[0] == "Connection to etcd"],
        "logging": [o for o in helps.get("exporter", []) if o[0] == "Logging"],
    }
    flags_of = lambda name: {o[1] for o in helps.get(name, [])}
    # By flag name, not by help heading: a heading in clap carries over to the flags after it.
    shared = {o[1] for o in out["connection"] + out["logging"]}
    for name, opts in helps.items():
        own = [o for o in opts if o[1] not in shared]
        if name == "":
            own = [o for o in own if o[1] not in flags_of("exporter")]
        elif name.startswith("bench ") and name != "bench put":
            own = [o for o in own if o[1] not in flags_of("bench put")]
        out[name or "etcd-monitor"] = own
    return out


def main():
    argv = [a for a in sys.argv[1:] if a != "--check"]
    check = "--check" in sys.argv[1:]
    binary = argv[0] if argv else os.path.join(ROOT, "target", "debug", "etcd-monitor")
    if not os.path.exists(binary):
        raise SystemExit(f"gen-config-doc: {binary} not found: cargo build -p etcd-monitor first")
    wanted = tables(binary)
    doc = open(DOC, encoding="utf-8").read()
    problems = []
    documented = set()

    def fill(m):
        name = m.group(1).strip()
        documented.add(name)
        if name not in wanted:
            problems.append(f"docs/configuration.md has a table for `{name}`, which the binary does not have")
            return m.group(0)
        body = table(wanted[name]) if wanted[name] else "(no flags of its own)"
        return f"<!-- flags: {m.group(1)} -->\n{body}\n<!-- /flags -->"

    new = MARK.sub(fill, doc)
    for name, opts in wanted.items():
        if opts and name not in documented:
            problems.append(f"docs/configuration.md has no flag table for `{name}` (add <!-- flags: {name} --> <!-- /flags -->)")
    if check:
        if new != doc:
            problems.append("docs/configuration.md's flag tables differ from the binary's --help: run scripts/gen-config-doc.py")
        for p in problems:
            print(f"gen-config-doc: {p}", file=sys.stderr)
        if not problems:
            print("gen-config-doc: docs/configuration.md matches the binary's flags")
        return 1 if problems else 0
    with open(DOC, "w", encoding="utf-8") as f:
        f.write(new)
    for p in problems:
        print(f"gen-config-doc: {p}", file=sys.stderr)
    print("gen-config-doc: docs/configuration.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
