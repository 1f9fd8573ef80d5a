"""How much a project repeats itself: the share of its held-out files' lines (ckls.fim.split, fraction 0.2, seed
0, as every quality bench holds out; lines stripped, at least 12 characters, comments left out) that occur
verbatim in one of its other files. It bounds what any repository memory or retrieval can copy, and it is computed
from the source alone, so it can choose projects before any completion is scored.

    python bench/reuse.py sqlparse==0.6.1 tomlkit==0.15.2 marshmallow==4.4.0 stripe==16.1.0 [--cache .work/eval]

With --evals DIR (bench/eval_projects.py's JSON files, NAME-VERSION-TAG.json), also: of the line samples the
first tag misses, how many have their whole line verbatim in the project's other files, and how many of those
each other tag gets right.

    python bench/reuse.py stripe==16.1.0 --evals .work/reuse --tags base,ret,retmem
"""
from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from eval_projects import fetch  # noqa: E402

MIN_CHARS = 12


def lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return []
    return [s for s in (line.strip() for line in text.splitlines()) if len(s) >= MIN_CHARS and not s.startswith("#")]


def reuse(tree: str) -> dict:
    from ckls.fim.split import source_files, split_files

    files = source_files(tree)
    others, held = split_files(tree, 0.2, 0, files)
    seen = {s for rel in others for s in lines(os.path.join(tree, rel))}
    held_lines = [s for rel in held for s in lines(os.path.join(tree, rel))]
    return {"files": len(files), "held_out": len(held), "lines": len(held_lines), "seen": seen,
            "verbatim": sum(s in seen for s in held_lines) / max(1, len(held_lines))}


def misses(seen: set, evals: list[list[dict]]) -> tuple[int, int, list[int]]:
    """(misses of the first eval, those whose whole line is in `seen`, how many of those each other eval gets)"""
    first = [s for s in evals[0] if s["kind"] == "line"]
    miss = [i for i, s in enumerate(first) if not s["em"] and (s["line_prefix"] + s["target"]).strip() in seen]
    others = [[s for s in e if s["kind"] == "line"] for e in evals[1:]]
    return sum(not s["em"] for s in first), len(miss), [sum(bool(o[i]["em"]) for i in miss) for o in others]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("projects", nargs="+", metavar="NAME==VERSION")
    ap.add_argument("--cache", default=os.path.join(ROOT, ".work", "eval"))
    ap.add_argument("--evals", default=None, metavar="DIR", help="eval JSON files to read misses from")
    ap.add_argument("--tags", default="base,ret", help="with --evals: the tags, the first the baseline")
    a = ap.parse_args()
    tags = a.tags.split(",")
    head = "| project | source files (held out) | held-out lines | verbatim elsewhere |"
    if a.evals:
        head += f" {tags[0]} misses | of them verbatim elsewhere | " + " | ".join(f"{t} gets" for t in tags[1:]) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for spec in a.projects:
        name, _, version = spec.partition("==")
        if not version:
            ap.error(f"{spec}: expected NAME==VERSION")
        r = reuse(fetch(name, version, a.cache))
        row = f"| {spec} | {r['files']} ({r['held_out']}) | {r['lines']:,} | {r['verbatim']:.3f} |"
        if a.evals:
            evals = []
            for t in tags:
                with open(os.path.join(a.evals, f"{name}-{version}-{t}.json")) as f:
                    evals.append(json.load(f)["samples"])
            n_miss, n_seen, got = misses(r["seen"], evals)
            row += f" {n_miss} | {n_seen} | " + " | ".join(str(g) for g in got) + " |"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
