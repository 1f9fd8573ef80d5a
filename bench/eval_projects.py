"""Completion quality of a model on real projects it was not trained on: fetches each project's sdist from PyPI
(`pip download --no-deps --no-binary :all:`), unpacks it into a cache directory and runs
`ckls eval completion` on its held-out files, one JSON per project.

    python bench/eval_projects.py [--model M] [--samples 200] [--blocks 50] [--threads 2] [--cache .work/eval]
                                  [--memory]

The projects are pure-Python libraries absent from the default model's training manifest (see
ckls/models/DATACARD.md); their versions are pinned so that figures can be compared across models."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # runs from a checkout; the eval child gets the same path below

PROJECTS = {"sqlparse": "0.6.1", "tomlkit": "0.15.2", "marshmallow": "4.4.0"}


def fetch(name: str, version: str, cache: str) -> str:
    """Unpacked source tree of name==version under cache/src (downloaded once)."""
    sdists, src = os.path.join(cache, "sdist"), os.path.join(cache, "src")
    os.makedirs(sdists, exist_ok=True)
    os.makedirs(src, exist_ok=True)
    tree = os.path.join(src, f"{name}-{version}")
    if os.path.isdir(tree):
        return tree
    have = [f for f in os.listdir(sdists) if f.lower().startswith(f"{name.lower().replace('-', '_')}-{version}")
            or f.lower().startswith(f"{name.lower()}-{version}")]
    if not have:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
                        "-d", sdists, f"{name}=={version}"], check=True)
        have = [f for f in os.listdir(sdists) if version in f and name.lower().replace("-", "_") in
                f.lower().replace("-", "_")]
    archive = os.path.join(sdists, have[0])
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(src)
    else:
        with tarfile.open(archive) as t:
            t.extractall(src, filter="data")
    top = [d for d in os.listdir(src) if d.lower().replace("-", "_") == f"{name}-{version}".lower().replace("-", "_")]
    if top and top[0] != os.path.basename(tree):
        os.rename(os.path.join(src, top[0]), tree)
    return tree


def report(out: str, projects: dict, tag: str) -> str:
    """Markdown rows per project and pooled over all samples, with the line misses by kind."""
    from types import SimpleNamespace

    from ckls.eval.report import MISS_KINDS, misses, summarize

    rows, pooled = [], []
    for name, version in projects.items():
        with open(os.path.join(out, f"{name}-{version}{tag}.json")) as f:
            d = json.load(f)
        recs = [SimpleNamespace(**r) for r in d["samples"]]
        for r in recs:   # files written before samples kept the cursor line's prefix: read it from the tree
            if not hasattr(r, "line_prefix"):
                with open(os.path.join(d["repo"], r.path), encoding="utf-8") as f:
                    r.line_prefix = f.read().replace("\r\n", "\n").split("\n")[r.line][:r.col]
        pooled += recs
        rows.append((f"{name} {version} ({len(d['files'])} of {d['n_source_files']} files)", recs, d["wall_s"]))
    rows.append(("all three", pooled, sum(r[2] for r in rows)))
    lines = ["| project | line samples | line EM | line edit sim | block samples | block first-line EM | "
             "block edit sim | mean latency ms | wall s |", "|---|---|---|---|---|---|---|---|---|"]
    for label, recs, wall in rows:
        by = {r["task"]: r for r in summarize(recs) if r["language"] in ("python", "all")}
        li, bl = by.get("line"), by.get("block")
        lat = sum(r.latency_ms for r in recs) / len(recs)
        lines.append(f"| {label} | {li['samples']} | {li['exact_match']:.3f} | {li['edit_similarity']:.3f} | "
                     f"{bl['samples'] if bl else 0} | {bl['exact_match'] if bl else 0:.3f} | "
                     f"{bl['edit_similarity'] if bl else 0:.3f} | {lat:.0f} | {wall:.0f} |")
    m = misses(pooled)
    n = sum(m.values())
    lines.append("")
    lines.append(f"Line misses ({n}): " + ", ".join(f"{k} {m[k]} ({m[k] / n:.0%})" for k in MISS_KINDS if m[k]))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--blocks", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=".work/eval")
    ap.add_argument("--out", default=None, help="directory for the JSON files (default CACHE/results)")
    ap.add_argument("--project", action="append", default=None, help="NAME==VERSION (repeatable); default: "
                    + ", ".join(f"{k}=={v}" for k, v in PROJECTS.items()))
    ap.add_argument("--tag", default="", help="suffix of the JSON names (e.g. a model or setting)")
    ap.add_argument("--memory", action="store_true", help="with the repository memory built from each project's "
                    "files that are not held out (`ckls eval completion --memory`); bench/repo_memory.py pairs it")
    ap.add_argument("--report", action="store_true", help="no runs: a markdown table of the JSON files there")
    ap.add_argument("extra", nargs="*", help="more `ckls eval completion` flags, after --")
    a = ap.parse_args()
    projects = dict(p.split("==", 1) for p in a.project) if a.project else PROJECTS
    out = a.out or os.path.join(a.cache, "results")
    if a.report:
        print(report(out, projects, a.tag))
        return 0
    os.makedirs(out, exist_ok=True)
    summary = {}
    for name, version in projects.items():
        tree = fetch(name, version, a.cache)
        js = os.path.join(out, f"{name}-{version}{a.tag}.json")
        cmd = [sys.executable, "-m", "ckls", "eval", "completion", "--repo", tree, "--samples", str(a.samples),
               "--blocks", str(a.blocks), "--seed", str(a.seed), "--threads", str(a.threads), "--json", js]
        cmd += ["--model", a.model] if a.model else []
        cmd += (["--memory"] if a.memory else ["--memory-enabled", "false"]) + a.extra
        print(f"== {name} {version}", flush=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
        subprocess.run(cmd, check=True, env=env)
        with open(js) as f:
            summary[f"{name}=={version}"] = json.load(f)["summary"]
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
