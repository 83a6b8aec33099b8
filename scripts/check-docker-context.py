#!/usr/bin/env python3
"""Checks, without a Docker engine, that `docker build -t etcd-monitor:latest .` (and the documented
`docker build -f deploy/Dockerfile .`) have what they need in their build context:

- Dockerfile and deploy/Dockerfile are the same file (BuildKit does not follow a symlinked Dockerfile,
  so the second is a copy) and no deploy/Dockerfile.dockerignore overrides the root .dockerignore;
- the build context is computed from .dockerignore with the Docker SDK's own matcher
  (docker.utils.build.exclude_paths, which follows moby's patternmatcher rules), and copied to a
  temporary directory;
- every COPY/ADD source of the Dockerfile (other than --from=stage) matches something in it;
- the copied workspace is what `cargo build --locked -p etcd-monitor` reads: `cargo metadata --no-deps`
  parses every member's manifest there, every lib, bin and build script it names exists, and every
  file the sources pull in at compile time (include_str!, include_bytes!, #[path]) is there too.

One line per problem; exit 1 if any.
"""
import fnmatch
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    from docker.utils.build import exclude_paths
except ImportError:
    sys.exit("check-docker-context: the PyPI package docker is missing (scripts/deps.sh)")


def dockerignore_patterns():
    path = os.path.join(ROOT, ".dockerignore")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]


def instructions(dockerfile):
    """(instruction, arguments) with continuation lines joined."""
    out, current = [], ""
    with open(dockerfile, encoding="utf-8") as f:
        for line in f:
            stripped = line.rstrip("\n")
            if not current and (not stripped.strip() or stripped.lstrip().startswith("#")):
                continue
            if stripped.endswith("\\"):
                current += stripped[:-1] + " "
                continue
            current += stripped
            parts = current.strip().split(None, 1)
            out.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
            current = ""
    return out


def copy_sources(args):
    """The sources of a COPY/ADD (shell form), or None when it copies from a stage or an image."""
    words = args.split()
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return None
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1]


def main():
    problems = []
    dockerfile = os.path.join(ROOT, "Dockerfile")
    copy = os.path.join(ROOT, "deploy", "Dockerfile")
    if not os.path.exists(dockerfile):
        sys.exit("check-docker-context: no Dockerfile at the repository root")
    with open(dockerfile, "rb") as a, open(copy, "rb") as b:
        if a.read() != b.read():
            problems.append("deploy/Dockerfile differs from Dockerfile: copy the root one over it")
    if os.path.exists(os.path.join(ROOT, "deploy", "Dockerfile.dockerignore")):
        problems.append("deploy/Dockerfile.dockerignore would override .dockerignore for -f deploy/Dockerfile")

    context = exclude_paths(ROOT, dockerignore_patterns(), "Dockerfile")
    files = sorted(p for p in context if os.path.isfile(os.path.join(ROOT, p)))

    for instruction, args in instructions(dockerfile):
        if instruction not in ("COPY", "ADD"):
            continue
        sources = copy_sources(args)
        for src in sources or []:
            src = src.strip("/") or "."
            if src == ".":
                continue
            if not any(fnmatch.fnmatchcase(f, src) or f.startswith(src + "/") for f in files):
                problems.append(f"Dockerfile: {instruction} {src}: nothing in the build context matches it")

    with tempfile.TemporaryDirectory(prefix="docker-context-") as tmp:
        for rel in files:
            dst = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), dst)
        r = subprocess.run(
            ["cargo", "metadata", "--no-deps", "--offline", "--format-version", "1"],
            cwd=tmp, capture_output=True, text=True,
        )
        if r.returncode != 0:
            err = r.stderr.strip().splitlines()
            problems.append(f"cargo metadata in the build context: {err[-1] if err else r.returncode}")
        else:
            meta = json.loads(r.stdout)
            for pkg in meta["packages"]:
                for target in pkg["targets"]:
                    if set(target["kind"]) & {"lib", "bin", "custom-build", "rlib", "proc-macro"}:
                        if not os.path.exists(target["src_path"]):
                            problems.append(f"{pkg['name']}: {os.path.relpath(target['src_path'], tmp)} is not in the build context")
        # Files the sources read at compile time, relative to the file that names them.
        pull = re.compile(r'(?:include_str|include_bytes)!\(\s*"([^"]+)"\s*\)|#\[path\s*=\s*"([^"]+)"\]')
        for rs in glob.glob(os.path.join(tmp, "**", "src", "**", "*.rs"), recursive=True):
            with open(rs, encoding="utf-8") as f:
                text = f.read()
            for m in pull.finditer(text):
                target = os.path.normpath(os.path.join(os.path.dirname(rs), m.group(1) or m.group(2)))
                if not os.path.exists(target):
                    problems.append(f"{os.path.relpath(rs, tmp)}: {m.group(0)}: not in the build context")

    for p in problems:
        print(f"check-docker-context: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"check-docker-context: the build context ({len(files)} files) holds everything the Dockerfile and "
          "`cargo build -p etcd-monitor` read; deploy/Dockerfile is the root one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
