"""Speculative decoding from the context (settings.speculative_tokens; ckls.runtime.draft) on real code: the engine
completes cursor positions in the held-out files of bench/eval_projects.py's projects with each draft length in
turn, the prompt already in the KV cache (a pause while typing: what is timed is the suggestion's generation),
and reports per draft length the time per suggestion (median, p90, mean over samples of each sample's median over
repeats), forward passes per suggestion, tokens per pass, accepted draft tokens per pass and the
share of drafted tokens accepted — and checks that every suggestion is the same, token for token, as without
speculation.

    python bench/speculative.py [--model M] [--samples 40] [--blocks 20] [--drafts 0,4,8] [--repeats 3]
                                [--threads 2] [--cache .work/eval] [--out results.json]

The trees come from bench/eval_projects.py's cache (CACHE/src/NAME-VERSION; fetched there when missing)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        d = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return f"{d.get('Model name', '?').strip()} (family {d.get('CPU family', '?').strip()})"
    except OSError:
        return platform.processor() or "?"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    from eval_projects import PROJECTS, fetch

    from ckls.config import Settings
    from ckls.completion.engine import Engine
    from ckls.eval.runner import Neighbours, build_memory, sample_job
    from ckls.eval.samples import make_samples
    from ckls.fim.split import source_files, split_files

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="")
    ap.add_argument("--samples", type=int, default=40, help="line samples per project")
    ap.add_argument("--blocks", type=int, default=20, help="block samples per project")
    ap.add_argument("--drafts", default="0,4,8", help="draft lengths compared (0: no speculation, the reference; "
                    "a trailing m, e.g. 8m: the repository memory may draft too, with --memory)")
    ap.add_argument("--memory", action="store_true", help="the repository memory (the files not held out) attached, "
                    "as `ckls eval completion --memory`: mixed into every variant")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=".work/eval")
    ap.add_argument("--out", default=None, help="write per-sample results as JSON here")
    a = ap.parse_args()
    drafts = [x.strip() for x in a.drafts.split(",")]
    drafts = drafts if "0" in drafts else ["0"] + drafts
    base = Settings(model_path=a.model, threads=a.threads, latency_ms=60000, quick_start=False)
    eng = Engine(base)
    eng.load(base).result()
    print(f"model {base.resolved_model_path}; {a.threads} threads; cpu {cpu_name()}; batch_exact {eng.batch_exact}; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    rows = []  # one per (sample, draft length)
    mismatches = []
    t_start = time.monotonic()
    for name, version in PROJECTS.items():
        tree = fetch(name, version, a.cache)
        files = split_files(tree, 0.2, 0, source_files(tree))[1]
        if a.memory:
            build_memory(eng, tree, [f for f in source_files(tree) if f not in set(files)], base)
        samples = make_samples(tree, files, a.samples, a.blocks, a.seed, base.max_lines)
        neighbours = Neighbours(tree, source_files(tree))
        for k, s in enumerate(samples):
            eng.forget_windows()
            job = lambda: sample_job(s, tree, base, neighbours)  # noqa: E731  (a fresh deadline each run)
            eng.settings = base
            eng.submit(job()).result()  # the prompt into the cache: what follows times the generation
            runs: dict[str, list] = {d: [] for d in drafts}
            for r in range(a.repeats):
                order = drafts if r % 2 == 0 else drafts[::-1]
                for d in order:
                    eng.settings = dataclasses.replace(base, speculative_tokens=int(d.rstrip("m")))
                    eng.draft_memory = d.endswith("m")
                    eng.forget_windows()
                    runs[d].append(eng.submit(job()).result())
            ref = runs["0"][0]
            for d in drafts:
                for res in runs[d]:
                    if (res.raw, res.n_generated) != (ref.raw, ref.n_generated):
                        mismatches.append((name, s.path, s.line, s.col, d, ref.raw, res.raw))
                res = runs[d][0]
                rows.append({"project": name, "path": s.path, "line": s.line, "kind": s.kind, "draft": d,
                             "ms": statistics.median(x.total_ms for x in runs[d]),
                             "n_uncached": min(x.n_prompt - x.n_reused for x in runs[d]),
                             "tokens": res.n_generated, "steps": res.n_steps, "drafted": res.n_drafted,
                             "accepted": res.n_accepted, "timed_out": any(x.timed_out for x in runs[d])})
            print(f"\r{name}: {k + 1}/{len(samples)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    eng.close()
    print(f"{len(rows) // len(drafts)} suggestions x {len(drafts)} draft lengths x {a.repeats} repeats, "
          f"{time.monotonic() - t_start:.0f} s; load after {os.getloadavg()[0]:.2f}")
    print("| draft | suggestions | ms/suggestion p50 | p90 | mean | passes/suggestion | tokens/pass | "
          "accepted/pass | drafted accepted | tokens/suggestion |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ref_ms = {(r["path"], r["line"], r["kind"]): r["ms"] for r in rows if r["draft"] == "0"}
    for d in drafts:
        rs = [r for r in rows if r["draft"] == d]
        ms = [r["ms"] for r in rs]
        toks = sum(r["tokens"] for r in rs)
        passes = sum(r["steps"] + 1 for r in rs)  # + the prompt's last token, evaluated at the start
        drafted = sum(r["drafted"] for r in rs)
        acc = sum(r["accepted"] for r in rs)
        ratio = statistics.median(r["ms"] / ref_ms[(r["path"], r["line"], r["kind"])] for r in rs)
        print(f"| {d} | {len(rs)} | {statistics.median(ms):.1f} | {pct(ms, 0.9):.1f} | {statistics.mean(ms):.1f} | "
              f"{passes / len(rs):.1f} | {toks / passes:.2f} | {acc / passes:.2f} | "
              f"{acc / drafted if drafted else 0:.0%} | {toks / len(rs):.1f} |  (median ratio to 0: {ratio:.2f})")
    print(f"suggestions differing from draft 0: {len(mismatches)}")
    for m in mismatches[:5]:
        print("  ", m)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"rows": rows, "mismatches": mismatches, "cpu": cpu_name(), "args": vars(a)}, f, indent=0)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
