"""Paired comparison of two completion evals on the same cursors: the mean difference of a per-sample measure with
a bootstrap 95% interval, and how many samples each side won.

    python -m ckls.eval.paired BASE.json OTHER.json [...more OTHER.json] [--kind line] [--measure em]

The JSON files are `ckls eval completion --json` outputs (bench/eval_projects.py writes one per project); their
samples must be the same cursors in the same order (same tree, split and seed), which is checked."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ckls.stats import bootstrap


def compare(base: list[dict], other: list[dict], kind: str = "line", measure: str = "em") -> dict:
    a = [s for s in base if s["kind"] == kind]
    b = [s for s in other if s["kind"] == kind]
    if [(s["path"], s["line"], s["col"]) for s in a] != [(s["path"], s["line"], s["col"]) for s in b]:
        raise ValueError("the two evals are not on the same cursors (tree, split, seed or sample count differ)")
    x = np.asarray([float(s[measure]) for s in a])
    y = np.asarray([float(s[measure]) for s in b])
    lo, hi = bootstrap(y - x)
    return {"n": len(a), "base": float(x.mean()) if len(a) else 0.0, "other": float(y.mean()) if len(a) else 0.0,
            "diff": float((y - x).mean()) if len(a) else 0.0, "ci95": (lo, hi),
            "won": int((y > x).sum()), "lost": int((y < x).sum())}


def line(label: str, r: dict) -> str:
    return (f"{label}: n {r['n']}, {r['base']:.3f} -> {r['other']:.3f}, {r['diff']:+.3f} "
            f"[{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}], won {r['won']} lost {r['lost']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ckls.eval.paired", description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("other", nargs="+")
    ap.add_argument("--kind", default="line", choices=["line", "block"])
    ap.add_argument("--measure", default="em", choices=["em", "es", "block_em"])
    a = ap.parse_args(argv)
    with open(a.base) as f:
        base = json.load(f)["samples"]
    for path in a.other:
        with open(path) as f:
            print(line(path, compare(base, json.load(f)["samples"], a.kind, a.measure)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
