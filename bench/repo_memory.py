"""What the repository memory at the logits buys (ckls.completion.memory), paired on the same cursors: for each
project of bench/eval_projects.py, the memory is built from the files that are NOT held out (ckls.fim.split: a
held-out file is never in it), then every line sample of the held-out files is completed through the server's
pipeline (ckls.eval.runner.sample_job -> Engine) without the memory and with each mixing rule
(ckls.runtime.ngram_memory.RULES), one after the other on the same prompt (its K/V cached once). Reports line
exact match per configuration, the paired difference against no memory with a bootstrap 95% interval, the
memory's size and build time, and the cost of one mix call (one per generated token) in microseconds.

    python bench/repo_memory.py [--samples 200] [--threads 2] [--cache .work/eval] [--out .work/memory]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from eval_projects import PROJECTS, fetch  # noqa: E402

from ckls.stats import bootstrap  # noqa: E402


def mix_cost(mem, model, contexts: list[list[int]], reps: int = 3) -> dict:
    """Microseconds per mix call (as Model.generate makes it: context array built, one C call) on real contexts
    and a logits row of the model's vocabulary; and the share of calls where the memory spoke."""
    from ckls.runtime.ngram_memory import MAX_MATCH

    rng = np.random.default_rng(0)
    logits = (rng.standard_normal(model.n_vocab) * 3).astype(np.float32)
    work = logits.copy()
    spoke = 0
    t = time.perf_counter()
    for _ in range(reps):
        for c in contexts:
            work[:] = logits
            spoke += mem.native.mix(work, np.array(c[-MAX_MATCH:], dtype=np.int32)) > 0
    dt = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(reps):
        for c in contexts:
            work[:] = logits
    base = time.perf_counter() - t
    n = reps * len(contexts)
    return {"calls": n, "us_per_call": (dt - base) / n * 1e6, "spoke_share": spoke / n}


def run_project(name: str, version: str, a) -> dict:
    from ckls.completion.engine import Engine
    from ckls.completion.memory import RULES, RepoMemory
    from ckls.config import Settings
    from ckls.eval.runner import Neighbours, sample_job, score
    from ckls.eval.samples import make_samples
    from ckls.fim.split import source_files, split_files

    tree = fetch(name, version, a.cache)
    all_files = source_files(tree)
    train, held = split_files(tree, 0.2, 0, all_files)
    assert not set(train) & set(held)
    settings = Settings().merged({"threads": a.threads, "latency_ms": 60000}, strict=True)[0]
    samples = [s for s in make_samples(tree, held, a.samples, 0, a.seed, settings.max_lines) if s.kind == "line"]
    eng = Engine(settings)
    eng.load(settings).result()
    mem = RepoMemory(eng.model.tokenizer, capacity_tokens=settings.memory_tokens)
    t = time.perf_counter()
    for rel in train:
        with open(os.path.join(tree, rel), encoding="utf-8", errors="replace") as f:
            mem.add_file(rel, f.read())
    build_s = time.perf_counter() - t
    configs = ["none"] + [r for r in RULES if r in a.rules.split(",")]
    neighbours = Neighbours(tree, all_files)
    em = {c: [] for c in configs}
    lat = {c: [] for c in configs}
    gen = {c: [] for c in configs}
    examples = []
    t0 = time.monotonic()
    for k, s in enumerate(samples):
        preds = {}
        for c in configs:
            eng.forget_windows()
            if c == "none":
                eng.attach_memory(None)
            else:
                mem.rule = c
                eng.attach_memory(mem)
            job = sample_job(s, tree, settings, neighbours, document=c != "none")
            res = eng.submit(job).result()
            pred, ok, _, _ = score(s, res.text)
            em[c].append(bool(ok))
            lat[c].append(res.total_ms)
            gen[c].append(res.n_generated)
            preds[c] = pred
        if len(set(preds.values())) > 1 and len(examples) < 12:
            examples.append({"path": s.path, "line": s.line, "target": s.target, **preds})
        if not a.quiet:
            el = time.monotonic() - t0
            sys.stderr.write(f"\r{name} [{k + 1}/{len(samples)}] " + " ".join(
                f"{c} {sum(em[c]) / len(em[c]):.3f}" for c in configs) + f"  {el / (k + 1):.2f} s/sample   ")
            sys.stderr.flush()
    if not a.quiet:
        sys.stderr.write("\n")
    # per-token cost: contexts at every 7th token of the held-out files (what generation sees: code before it)
    ctxs = []
    for rel in held:
        with open(os.path.join(tree, rel), encoding="utf-8", errors="replace") as f:
            ids = eng.model.tokenizer.encode(f.read())
        ctxs += [ids[max(0, i - 64): i] for i in range(2, len(ids), 7)]
    random.Random(0).shuffle(ctxs)
    costs = {}
    for c in configs[1:]:
        mem.rule = c
        costs[c] = mix_cost(mem, eng.model, ctxs[:3000])
    eng.close()
    out = {"project": f"{name}=={version}", "n_files": len(all_files), "memory_files": len(train),
           "held_out_files": held, "memory_tokens": mem.n_tokens, "build_s": round(build_s, 3),
           "samples": len(samples), "seed": a.seed, "threads": a.threads, "configs": {}}
    for c in configs:
        row = {"em": sum(em[c]) / len(em[c]), "mean_latency_ms": float(np.mean(lat[c])),
               "mean_generated": float(np.mean(gen[c]))}
        if c != "none":
            d = [float(x) - float(y) for x, y in zip(em[c], em["none"])]
            lo, hi = bootstrap(d)
            row.update(diff=float(np.mean(d)), ci95=[lo, hi], gained=sum(x and not y for x, y in zip(em[c], em["none"])),
                       lost=sum(y and not x for x, y in zip(em[c], em["none"])), mix=costs[c])
        out["configs"][c] = row
    out["per_sample_em"] = {c: [int(x) for x in em[c]] for c in configs}
    out["examples"] = examples
    return out


def table(results: list[dict]) -> str:
    from ckls.completion.memory import RULES

    RULES = [c for c in RULES if all(c in r["configs"] for r in results)]  # those every run compared
    lines = ["| project | line samples | memory (files / tokens / build ms) | EM no memory | "
             + " | ".join(f"EM {c} (diff, 95% CI; +/-)" for c in RULES) + " |",
             "|---|---|---|---|" + "---|" * len(RULES)]
    pooled = {c: [] for c in ["none", *RULES]}
    for r in results:
        cells = [r["project"], str(r["samples"]),
                 f"{r['memory_files']} / {r['memory_tokens']:,} / {r['build_s'] * 1e3:.0f}",
                 f"{r['configs']['none']['em']:.3f}"]
        for c in RULES:
            x = r["configs"][c]
            cells.append(f"{x['em']:.3f} ({x['diff']:+.3f}, [{x['ci95'][0]:+.3f}, {x['ci95'][1]:+.3f}]; "
                         f"+{x['gained']}/-{x['lost']})")
        for c in pooled:
            pooled[c] += r["per_sample_em"][c]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["all", str(len(pooled["none"])), "", f"{np.mean(pooled['none']):.3f}"]
    for c in RULES:
        d = [x - y for x, y in zip(pooled[c], pooled["none"])]
        lo, hi = bootstrap(d)
        cells.append(f"{np.mean(pooled[c]):.3f} ({np.mean(d):+.3f}, [{lo:+.3f}, {hi:+.3f}])")
    lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Mix cost per generated token (us, Python call included; share of steps where the memory spoke): "
                 + "; ".join(f"{r['project']}: " + ", ".join(
                     f"{c} {r['configs'][c]['mix']['us_per_call']:.1f} ({r['configs'][c]['mix']['spoke_share']:.0%})"
                     for c in RULES) for r in results))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=".work/eval")
    ap.add_argument("--out", default=".work/memory")
    ap.add_argument("--project", action="append", default=None, help="NAME==VERSION (repeatable)")
    ap.add_argument("--report", action="store_true", help="no runs: the table of the JSON files in --out")
    from ckls.completion.memory import RULES

    ap.add_argument("--rules", default=",".join(RULES), help="the mixing rules to compare with none (default: all)")
    ap.add_argument("--quiet", "-q", action="store_true")
    a = ap.parse_args()
    projects = dict(p.split("==", 1) for p in a.project) if a.project else PROJECTS
    os.makedirs(a.out, exist_ok=True)
    results = []
    for name, version in projects.items():
        path = os.path.join(a.out, f"{name}-{version}.json")
        if not a.report:
            r = run_project(name, version, a)
            with open(path, "w") as f:
                json.dump(r, f, indent=1)
        with open(path) as f:
            results.append(json.load(f))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
