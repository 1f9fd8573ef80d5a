"""The kernel judge over the CUDA corpus on a GPU: verdict per entry (with the failing check and, for
compute-sanitizer findings, the tool's first error), cases run, seconds, and a benchmark of each correct
kernel at its spec's typical size.

    python bench/cuda_judge.py [--budget ci|full] [--bench-s 3] [--seed N] [--json out.json] [--only NAME]
    python bench/cuda_judge.py --per-tool [--only NAME]   # each compute-sanitizer tool alone on each entry

Prints a Markdown table (the form bench/RESULTS.md records). Exit status 1 when any entry's verdict differs
from the corpus's expectation (PASS for ok*.cu, FAIL for bug_*.cu).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ckls.verify.report import _fmt  # noqa: E402
from ckls.verify.run import Budget, verify  # noqa: E402
from ckls.verify.spec import KernelSpec  # noqa: E402
from kernels_corpus.corpus import entries  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", default="ci", choices=["ci", "full"])
    ap.add_argument("--bench-s", type=float, default=3.0)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--json")
    ap.add_argument("--only", help="substring of the entry ids to run")
    ap.add_argument("--per-tool", action="store_true", help="no differential tests: each sanitizer tool alone")
    a = ap.parse_args()
    seed = random.SystemRandom().getrandbits(32) if a.seed is None else a.seed
    print(f"seed {seed}", flush=True)
    if a.per_tool:
        return per_tool(seed, a.only)
    rows, reports, bad = [], {}, 0
    for e in entries():
        if e.language != "cuda" or (a.only and a.only not in e.id):
            continue
        budget = Budget.named(a.budget)
        budget.bench_s = a.bench_s if not e.bug else 0.0
        t0 = time.monotonic()
        rep = verify(e.ref, str(e.kernel), KernelSpec.load(e.spec_path), spec_path=str(e.spec_path),
                     budget=budget, seed=seed)
        dt = time.monotonic() - t0
        reports[e.id] = rep.to_dict()
        verdict = rep.verdict + (f" ({rep.failure.check}, {rep.failure.phase})" if rep.failure else "")
        why = ""
        if rep.failure:
            why = rep.failure.detail.splitlines()[0][:160] if rep.failure.detail else ""
        bad += rep.verdict != e.expect
        rows.append((e, verdict, why, rep, dt))
        print(f"{e.id}: {verdict} in {dt:.1f} s  {why}", flush=True)
        if rep.failure and rep.failure.log_tail:
            print("   " + "\n   ".join(rep.failure.log_tail.strip().splitlines()[:8]), flush=True)
    print("\n| kernel | planted bug | verdict (check, phase) | first finding | cases run | s |")
    print("|---|---|---|---|---|---|")
    for e, verdict, why, rep, dt in rows:
        cases = ", ".join(f"{k} {v}" for k, v in rep.cases_run.items())
        print(f"| {e.id} | {e.bug or '(correct)'} | {verdict} | {why.replace('|', '/')} | {cases} | {dt:.0f} |")
    print("\n| kernel | size | kernel (device, events) | kernel + copies | original | NumPy (CPU) | "
          "NumPy code on CuPy | speedup vs NumPy (device / with copies) |")
    print("|---|---|---|---|---|---|---|---|")
    for e, _, _, rep, _ in rows:
        b = rep.bench
        if not b:
            continue
        t = b["timings"]
        cell = {k: (_fmt(t[k]["median_s"]) + f" [{_fmt(t[k]['ci_lo_s'])}..{_fmt(t[k]['ci_hi_s'])}]"
                    if k in t else "-") for k in ("kernel", "kernel_with_transfers", "original", "numpy", "cupy")}
        sp = b["speedup"].get("numpy")
        spt = b.get("speedup_with_transfers", {}).get("numpy")
        sps = f"{sp['x']:.1f}x / {spt['x']:.2f}x" if sp and spt else "-"
        print(f"| {e.id} | {json.dumps(b['sizes'])} | {cell['kernel']} | {cell['kernel_with_transfers']} | "
              f"{cell['original']} | {cell['numpy']} | {cell['cupy']} | {sps} |")
        if b.get("flags"):
            print(f"FLAGS {e.id}: {b['flags']}")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps({"seed": seed, "reports": reports}, indent=1, default=str))
    print(f"\n{len(rows) - bad}/{len(rows)} verdicts as expected (seed {seed})")
    return 1 if bad else 0


def per_tool(seed: int, only: str | None) -> int:
    """Which compute-sanitizer tool flags which entry, with no differential testing before it."""
    tools = ("memcheck", "racecheck", "initcheck", "synccheck")
    print("| kernel | planted bug | " + " | ".join(tools) + " |")
    print("|---|---|" + "---|" * len(tools))
    for e in entries():
        if e.language != "cuda" or (only and only not in e.id):
            continue
        cells = []
        for tool in tools:
            b = Budget(hypothesis_examples=0, bench_s=0.0, shrink_tries=0, differential=False, cuda_tools=(tool,))
            rep = verify(e.ref, str(e.kernel), KernelSpec.load(e.spec_path), spec_path=str(e.spec_path),
                         budget=b, seed=seed)
            f = rep.failure
            cell = rep.verdict if not f else f"{rep.verdict}: " + (
                f.detail.split(": ", 1)[-1][:90] if f.check == "sanitizer" else f"{f.check} ({f.detail[:60]})")
            cells.append(cell.replace("|", "/"))
        print(f"| {e.id} | {e.bug or '(correct)'} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
