"""What fine-tuning on a repository buys: line exact match on its held-out files before and after one `ckls tune`
round, per project, on the PyPI projects of bench/eval_projects.py (not in the default model's training data).

For each project: `ckls eval completion` with the base model → `ckls tune` on the rest of the project (the
evaluation's held-out files excluded: `--exclude-eval-split`), within a time budget → the same evaluation with the
adapter. Same samples, seeds and settings on both sides; the adapter never saw the files it is measured on.

    python bench/tune_gain.py [--model M] [--budget-s 600] [--threads 2] [--samples 200] [--blocks 50]
    python bench/tune_gain.py --out DIR --tune-args "--tune-lr 1e-3 --option epochs=8"   # another configuration
    python bench/tune_gain.py --out DIR --eval-args "--retrieval true --memory" --eval-tag all
        # the same rounds (a round already in DIR is not run again) scored with retrieval and the repo memory too

Results: CACHE/gain/<project>-{base,tuned}.json, the tuning summary, and a markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from eval_projects import PROJECTS, fetch  # noqa: E402

HELD_OUT = 0.2  # the evaluation's default split; the tuner leaves exactly these files out


def child_env() -> dict:
    """This environment with the repository first on PYTHONPATH (keeping what is there: a --target install)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p])}


def run(cmd: list[str], log: str) -> None:
    env = child_env()
    with open(log, "a") as f:
        subprocess.run(cmd, check=True, env=env, stdout=f, stderr=subprocess.STDOUT)


def evaluate(tree: str, out: str, a, log: str, adapter: str | None = None) -> dict:
    if not os.path.exists(out):
        cmd = [sys.executable, "-m", "ckls", "eval", "completion", "--repo", tree, "--held-out", str(HELD_OUT),
               "--samples", str(a.samples), "--blocks", str(a.blocks), "--threads", str(a.threads), "--json", out,
               "--quiet"]
        cmd += (["--model", a.model] if a.model else []) + (["--adapter", adapter] if adapter else [])
        cmd += a.eval_args.split()
        run(cmd, log)
    with open(out) as f:
        return json.load(f)


def line_em(d: dict) -> float:
    recs = [r for r in d["samples"] if r["kind"] == "line"]
    return sum(r["em"] for r in recs) / max(1, len(recs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="GGUF base model (default: the shipped one)")
    ap.add_argument("--budget-s", type=float, default=600, help="tuning time per project (default 600)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--blocks", type=int, default=50)
    ap.add_argument("--cache", default=".work/eval")
    ap.add_argument("--out", default=None, help="results folder (default CACHE/gain)")
    ap.add_argument("--project", action="append", default=None, help="NAME==VERSION (repeatable)")
    ap.add_argument("--tune-args", default="", help="more arguments for `ckls tune` (one string)")
    ap.add_argument("--eval-args", default="", help="more arguments for both evaluations (one string), e.g. "
                    "\"--retrieval true --memory\"; give them an --eval-tag")
    ap.add_argument("--eval-tag", default="", help="suffix of the evaluations' JSON names (e.g. all)")
    ap.add_argument("--base-only", action="store_true", help="only the base model's evaluation")
    ap.add_argument("--oracle", action="store_true",
                    help="tune on every file, the evaluated ones included: not a gain, the ceiling of what having "
                         "seen the very files buys within the budget")
    a = ap.parse_args()
    projects = dict(p.split("==", 1) for p in a.project) if a.project else PROJECTS
    out = a.out or os.path.join(a.cache, "gain")
    os.makedirs(out, exist_ok=True)
    rows = []
    sfx = f"-{a.eval_tag}" if a.eval_tag else ""
    for name, version in projects.items():
        tree = fetch(name, version, a.cache)
        tag = f"{name}-{version}"
        log = os.path.join(out, f"{tag}.log")
        state = os.path.join(out, f"{tag}-state")
        if a.base_only:
            print(f"== {tag}: base evaluation", flush=True)
            print(f"line EM {line_em(evaluate(tree, os.path.join(out, f'{tag}-base{sfx}.json'), a, log)):.3f}")
            continue
        print(f"== {tag}: tuning ({a.budget_s:.0f} s budget)", flush=True)
        summary = os.path.join(out, f"{tag}-tune.json")
        t0 = time.monotonic()
        if not os.path.exists(summary):
            cmd = [sys.executable, "-m", "ckls", "tune", tree] + \
                  ([] if a.oracle else ["--exclude-eval-split", str(HELD_OUT)]) + [
                   "--state-dir", state, "--tune-budget-s", str(a.budget_s), "--tune-threads", str(a.threads),
                   "--progress", "lines", "--json"] + (["--model", a.model] if a.model else [])
            cmd += a.tune_args.split()
            r = subprocess.run(cmd, env=child_env(), capture_output=True, text=True)
            with open(log, "a") as f:
                f.write(r.stderr)
            if r.returncode != 0:
                print(r.stderr[-2000:], file=sys.stderr)
                return 1
            with open(summary, "w") as f:
                f.write(r.stdout)
        tune_wall = time.monotonic() - t0
        with open(summary) as f:
            tuned_summary = json.load(f)
        adapter = tuned_summary.get("adapter")
        # after tuning: a sweep evaluates the base model once per project beside the first tuning jobs
        print(f"== {tag}: base evaluation", flush=True)
        base = evaluate(tree, os.path.join(out, f"{tag}-base{sfx}.json"), a, log)
        print(f"== {tag}: evaluation with the adapter", flush=True)
        tuned = evaluate(tree, os.path.join(out, f"{tag}-tuned{sfx}.json"), a, log, adapter) if adapter else None
        rows.append((tag, base, tuned, tuned_summary, tune_wall))
    print("\n| project | line EM base | line EM tuned | gain | tuning steps | tokens | train s | held-out loss |")
    print("|---|---|---|---|---|---|---|---|")
    for tag, base, tuned, s, wall in rows:
        b = line_em(base)
        t = line_em(tuned) if tuned else b
        loss = f"{s.get('heldout_before', float('nan')):.3f} → {s.get('heldout_best', float('nan')):.3f}" \
            if s.get("heldout_before") is not None and s.get("heldout_best") is not None else "—"
        print(f"| {tag} | {b:.3f} | {t:.3f} | {t - b:+.3f} | {s.get('steps', 0)} | {s.get('tokens', 0)} | "
              f"{s.get('train_s', wall):.0f} | {loss} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
