"""How much a project repeats itself: the share of its held-out files' lines (ckls.fim.split, fraction 0.2, seed
0, as every quality bench holds out; lines stripped, at least 12 characters, comments left out) that occur
verbatim in one of its other files. It bounds what any repository memory or retrieval can copy, and it is computed
from the source alone, so it can choose projects before any completion is scored.

    python bench/reuse.py sqlparse==0.6.1 tomlkit==0.15.2 marshmallow==4.4.0 stripe==16.1.0 [--cache .work/eval]
"""
from __future__ import annotations

import argparse
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
    return {"files": len(files), "held_out": len(held), "lines": len(held_lines),
            "verbatim": sum(s in seen for s in held_lines) / max(1, len(held_lines))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("projects", nargs="+", metavar="NAME==VERSION")
    ap.add_argument("--cache", default=os.path.join(ROOT, ".work", "eval"))
    a = ap.parse_args()
    print("| project | source files (held out) | held-out lines | verbatim elsewhere |\n|---|---|---|---|")
    for spec in a.projects:
        name, _, version = spec.partition("==")
        if not version:
            ap.error(f"{spec}: expected NAME==VERSION")
        r = reuse(fetch(name, version, a.cache))
        print(f"| {spec} | {r['files']} ({r['held_out']}) | {r['lines']:,} | {r['verbatim']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
