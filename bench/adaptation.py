"""What ckls's repository adaptation buys, part by part and together, on projects the model never saw: line exact
match on the held-out files of each project through the server's pipeline, paired on the same cursors, for

    base        the model and the server's usual prompt
    retrieval   + windows of the project's other files from the index (`--retrieval true`)
    memory      + the repository token memory at the logits (`--memory`)
    lora        + a LoRA adapter from one `ckls tune` round on the project's other files (served only if it
                  passed the tuner's completion gate; tuned with retrieval when that part is measured with it)
    all         everything at once

each against base with a bootstrap 95% interval (ckls.eval.paired). The evaluated files are never indexed for
their own text, never in the memory, never trained on (`--exclude-eval-split`).

    python bench/adaptation.py [--model M] [--samples 600] [--threads 2] [--budget-s 600] [--parts base,retrieval,...]

Results: OUT/<project>-<part>.json and a markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from eval_projects import PROJECTS, fetch  # noqa: E402
from tune_gain import HELD_OUT, child_env, run  # noqa: E402

from ckls.eval.paired import compare  # noqa: E402

PARTS = {"base": [], "retrieval": ["--retrieval", "true"], "memory": ["--memory"], "lora": [],
         "all": ["--retrieval", "true", "--memory"]}


def evaluate(tree: str, out: str, a, log: str, flags: list[str], adapter: str | None) -> list[dict]:
    if not os.path.exists(out):
        cmd = [sys.executable, "-m", "ckls", "eval", "completion", "--repo", tree, "--held-out", str(HELD_OUT),
               "--samples", str(a.samples), "--blocks", "0", "--threads", str(a.threads), "--json", out, "--quiet"]
        cmd += (["--model", a.model] if a.model else []) + (["--adapter", adapter] if adapter else []) + flags
        run(cmd, log)
    with open(out) as f:
        return json.load(f)["samples"]


def tune(tree: str, out: str, tag: str, a, log: str, retrieval: bool) -> dict:
    """One round on the project's other files; its summary (the adapter, when the gate let it through)."""
    summary = os.path.join(out, f"{tag}-tune{'-r' if retrieval else ''}.json")
    if not os.path.exists(summary):
        cmd = [sys.executable, "-m", "ckls", "tune", tree, "--exclude-eval-split", str(HELD_OUT), "--state-dir",
               os.path.join(out, f"{tag}-state{'-r' if retrieval else ''}"), "--tune-budget-s", str(a.budget_s),
               "--tune-threads", str(a.threads), "--progress", "lines", "--json", "--retrieval",
               "true" if retrieval else "false"] + (["--model", a.model] if a.model else [])
        r = subprocess.run(cmd, env=child_env(), capture_output=True, text=True)
        with open(log, "a") as f:
            f.write(r.stderr)
        if r.returncode != 0:
            raise SystemExit(r.stderr[-2000:])
        with open(summary, "w") as f:
            f.write(r.stdout)
    with open(summary) as f:
        return json.load(f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="GGUF model (default: the shipped one)")
    ap.add_argument("--samples", type=int, default=600, help="line samples per project (default 600)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=600, help="tuning time per project (default 600)")
    ap.add_argument("--parts", default=",".join(PARTS), help="which of " + ", ".join(PARTS))
    ap.add_argument("--cache", default=".work/eval")
    ap.add_argument("--out", default=None, help="results folder (default CACHE/adaptation)")
    ap.add_argument("--project", action="append", default=None, help="NAME==VERSION (repeatable)")
    a = ap.parse_args()
    parts = [p for p in a.parts.split(",") if p]
    if unknown := set(parts) - set(PARTS):
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if "base" not in parts:
        parts.insert(0, "base")
    projects = dict(p.split("==", 1) for p in a.project) if a.project else PROJECTS
    out = a.out or os.path.join(a.cache, "adaptation")
    os.makedirs(out, exist_ok=True)
    table = ["| project | part | line EM | vs base (95% CI) | won / lost | adapter |", "|---|---|---|---|---|---|"]
    for name, version in projects.items():
        tree = fetch(name, version, a.cache)
        tag = f"{name}-{version}"
        log = os.path.join(out, f"{tag}.log")
        res = {}
        for part in parts:
            adapter = note = None
            if part in ("lora", "all"):
                s = tune(tree, out, tag, a, log, retrieval=part == "all")
                adapter = s.get("adapter")
                g = s.get("gate") or {}
                note = (f"served (gain {g['gain']:+.3f} nats)" if adapter and g else "served" if adapter else
                        f"not served: {s.get('message', '')[:60]}")
            print(f"== {tag}: {part}", flush=True)
            res[part] = (evaluate(tree, os.path.join(out, f"{tag}-{part}.json"), a, log, PARTS[part], adapter), note)
        base = res["base"][0]
        for part, (samples, note) in res.items():
            c = compare(base, samples)
            rel = "" if part == "base" else f"{c['diff']:+.3f} ({c['ci95'][0]:+.3f} … {c['ci95'][1]:+.3f})"
            wl = "" if part == "base" else f"{c['won']} / {c['lost']}"
            table.append(f"| {tag} | {part} | {c['other']:.3f} | {rel} | {wl} | {note or ''} |")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
