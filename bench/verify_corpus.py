"""The judge's catch rate on a planted-bug corpus: every kernel of the corpus judged over several seeds.

    python bench/verify_corpus.py --corpus tests/kernels_corpus2 [--seeds 2] [--seed-base S] [--budget ci|full]
                                  [--jobs 1|2] [--only SUBSTRING] [--json out.json]

Each kernel goes through ckls.verify.verify(...) (the judge's public entry point) once per seed; seeds are
S, S+1, ... (S fresh unless given, and printed). Prints a Markdown table (kernel, planted bug class, verdict
per seed with the failing check) and the totals: planted bugs caught (all seeds, any seed), per-seed catch
rates, false rejections of correct kernels, median verification time of a correct kernel, and the list of
planted bugs that passed. CUDA kernels count only where a GPU is present (elsewhere the judge can only call
them UNVERIFIED). Exit status 1 when a correct kernel is rejected, else 0: missed bugs are the measurement,
not an error of this script.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ckls.verify import KernelSpec, verify  # noqa: E402
from kernels_corpus.corpus import entries  # noqa: E402


def judge_one(job: tuple) -> dict:
    """One kernel, one seed: the verdict, the failing check and where, and the seconds it took."""
    ref, kernel, spec_path, seed, budget = job
    t0 = time.monotonic()
    rep = verify(ref, kernel, KernelSpec.load(spec_path), spec_path=spec_path, budget=budget, seed=seed)
    f = rep.failure
    return {"kernel": kernel, "seed": seed, "verdict": rep.verdict, "seconds": time.monotonic() - t0,
            "check": f.check if f else "", "phase": f.phase if f else "", "call": (f.call or "") if f else "",
            "case": f.case if f else None, "detail": (f.detail or "").splitlines()[0][:200] if f else "",
            "cases_run": rep.cases_run}


def cell(r: dict) -> str:
    if r["verdict"] == "FAIL":
        return f"FAIL ({r['check']}, {r['phase']})"
    return r["verdict"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / "tests" / "kernels_corpus2"))
    ap.add_argument("--seeds", type=int, default=2, help="seeds per kernel")
    ap.add_argument("--seed-base", type=int, help="first seed (fresh when left out)")
    ap.add_argument("--budget", default="ci", choices=["ci", "full"])
    ap.add_argument("--jobs", type=int, default=1, choices=[1, 2], help="kernels judged at once")
    ap.add_argument("--only", help="substring of the kernel ids (folder/file) to run")
    ap.add_argument("--json", help="write every result here")
    a = ap.parse_args(argv)

    from ckls.verify.build import gpu_present
    gpu = gpu_present()
    base = random.SystemRandom().getrandbits(31) if a.seed_base is None else a.seed_base
    seeds = [base + i for i in range(a.seeds)]
    ents = [e for e in entries(a.corpus) if not a.only or a.only in e.id]
    skipped = [e for e in ents if e.language == "cuda" and not gpu]
    ents = [e for e in ents if e not in skipped]
    print(f"corpus {a.corpus}: {len(ents)} kernels ({sum(not e.bug for e in ents)} correct, "
          f"{sum(bool(e.bug) for e in ents)} planted bugs), seeds {seeds}, budget {a.budget}, jobs {a.jobs}",
          flush=True)
    if skipped:
        print(f"not judged (CUDA, no GPU here): {', '.join(e.id for e in skipped)}")

    jobs = [(e.ref, str(e.kernel), str(e.spec_path), s, a.budget) for e in ents for s in seeds]
    by_id = {str(e.kernel): e for e in ents}
    results: dict[tuple[str, int], dict] = {}
    t0 = time.monotonic()

    def note(r):
        e = by_id[r["kernel"]]
        results[(r["kernel"], r["seed"])] = r
        bad = (e.bug and r["verdict"] != "FAIL") or (not e.bug and r["verdict"] != "PASS")
        print(f"  {e.id} seed {r['seed']}: {cell(r)} {r['seconds']:.1f} s{'  <--' if bad else ''}", flush=True)

    if a.jobs == 1:
        for j in jobs:
            note(judge_one(j))
    else:
        with ProcessPoolExecutor(max_workers=a.jobs) as pool:
            for r in pool.map(judge_one, jobs):
                note(r)
    wall = time.monotonic() - t0

    head = "| kernel | planted bug | " + " | ".join(f"seed {s}" for s in seeds) + " |"
    lines = [head, "|" + "---|" * (2 + len(seeds))]
    for e in ents:
        rs = [results[(str(e.kernel), s)] for s in seeds]
        lines.append(f"| {e.id} | {e.bug or '(correct)'} | " + " | ".join(cell(r) for r in rs) + " |")
    print("\n" + "\n".join(lines))

    bugs = [e for e in ents if e.bug]
    oks = [e for e in ents if not e.bug]

    def caught(e, s):
        return results[(str(e.kernel), s)]["verdict"] == "FAIL"

    all_seeds = sum(all(caught(e, s) for s in seeds) for e in bugs)
    any_seed = sum(any(caught(e, s) for s in seeds) for e in bugs)
    judged = len(bugs) * len(seeds)
    total = sum(caught(e, s) for e in bugs for s in seeds)
    pct = (lambda k, n: f"{100.0 * k / n:.1f}%" if n else "n/a")
    print(f"\nplanted bugs caught: {total}/{judged} verdicts ({pct(total, judged)}); "
          f"caught on every seed {all_seeds}/{len(bugs)} ({pct(all_seeds, len(bugs))}), "
          f"on at least one {any_seed}/{len(bugs)} ({pct(any_seed, len(bugs))})")
    for s in seeds:
        k = sum(caught(e, s) for e in bugs)
        print(f"  seed {s}: {k}/{len(bugs)} ({pct(k, len(bugs))})")
    false_rej = [(e, s) for e in oks for s in seeds if results[(str(e.kernel), s)]["verdict"] != "PASS"]
    print(f"false rejections of correct kernels: {len(false_rej)}/{len(oks) * len(seeds)} verdicts")
    for e, s in false_rej:
        r = results[(str(e.kernel), s)]
        print(f"  {e.id} seed {s}: {cell(r)} - {r['detail']} case {json.dumps(r['case'])}")
    ok_times = [results[(str(e.kernel), s)]["seconds"] for e in oks for s in seeds]
    if ok_times:
        print(f"median verification time of a correct kernel: {statistics.median(ok_times):.1f} s "
              f"(max {max(ok_times):.1f} s); wall {wall:.0f} s on {a.jobs} worker(s), {os.cpu_count()} cores")
    missed = [e for e in bugs if not all(caught(e, s) for s in seeds)]
    if missed:
        print("\nplanted bugs that PASS (on at least one seed):")
        for e in missed:
            which = [s for s in seeds if not caught(e, s)]
            print(f"  {e.id} ({e.bug}) passed on seed(s) {which}")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(
            {"corpus": a.corpus, "seeds": seeds, "budget": a.budget,
             "results": [dict(r, id=by_id[r["kernel"]].id, bug=by_id[r["kernel"]].bug) for r in results.values()]},
            indent=1, default=str))
    return 1 if false_rej else 0


if __name__ == "__main__":
    sys.exit(main())
