"""Report of bench/device/scale.sh: 1- vs 2-GPU throughput and whether the runs agree.

    python bench/scale_report.py WORK/scale [--json OUT.json]

Throughput: median of the logged intervals (10 steps each) that start ≥ 20 steps into an invocation, so
compilation and start-up stay out. Agreement: per logged step, the difference of the step's training loss
between a run and A (the uninterrupted 1-GPU run), and of the final held-out loss. E (another seed) shows how
far two runs that should *not* agree step by step lie apart, for scale.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

SKIP_STEPS = 20
RUNS = {"B": "1 GPU → resumed on 2", "C": "2 GPUs (resumed on 2)", "D": "2 GPUs → resumed on 1",
        "E": "1 GPU, other seed"}


def read_log(d: Path) -> list[dict]:
    f = d / "log.jsonl"
    return [json.loads(x) for x in f.read_text().splitlines() if x.strip()] if f.exists() else []


def throughput(recs: list[dict], world: int) -> float | None:
    vals = [r["tok_s"] for r in recs if r.get("world") == world and r.get("run_step", 0) > SKIP_STEPS]
    return statistics.median(vals) if vals else None


def curve(recs: list[dict]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in recs}


def metrics(d: Path) -> dict:
    f = d / "metrics.json"
    return json.loads(f.read_text()) if f.exists() else {}


def report(root: Path) -> dict:
    logs = {k: read_log(root / k) for k in "ABCDE"}
    t1 = throughput(logs["A"], 1)
    t2 = throughput(logs["C"], 2)
    out: dict = {"tok_s_1gpu": t1, "tok_s_2gpu": t2}
    if t1 and t2:
        out["tok_s_per_gpu_2gpu"] = t2 / 2
        out["efficiency"] = t2 / (2 * t1)
    for w in sorted(root.glob("W*"), key=lambda d: d.name):  # wide runs (scale.sh wide): W<N> on N GPUs
        if w.is_dir() and w.name[1:].isdigit():
            n = int(w.name[1:])
            tn = throughput(read_log(w), n)
            out.setdefault("wide", {})[n] = {"tok_s": tn, "efficiency": tn / (n * t1) if tn and t1 else None,
                                            "heldout_loss": metrics(w).get("heldout_loss")}
    ref = curve(logs["A"])
    ref_m = metrics(root / "A")
    out["A_heldout_loss"] = ref_m.get("heldout_loss")
    out["runs"] = {}
    for k, what in RUNS.items():
        c = curve(logs[k])
        common = sorted(set(ref) & set(c))
        diffs = [abs(c[s] - ref[s]) for s in common]
        m = metrics(root / k)
        row = {"what": what, "steps_compared": len(common),
               "max_abs_loss_diff": max(diffs) if diffs else None,
               "mean_abs_loss_diff": sum(diffs) / len(diffs) if diffs else None,
               "heldout_loss": m.get("heldout_loss")}
        if m.get("heldout_loss") is not None and ref_m.get("heldout_loss") is not None:
            row["heldout_diff"] = m["heldout_loss"] - ref_m["heldout_loss"]
        if k == "B":  # first half ran on 1 GPU exactly as A: a rerun of the same command
            half = [s for s in common if s <= max((r["step"] for r in logs[k] if r.get("world") == 1),
                                                  default=0)]
            row["rerun_max_abs_loss_diff"] = max((abs(c[s] - ref[s]) for s in half), default=None)
        out["runs"][k] = row
    # C and D share the state at the stop: from there one continued on 2 GPUs and one on 1, same global batch.
    c, d = curve(logs["C"]), curve(logs["D"])
    resumed = [s for r in logs["D"] if r.get("world") == 1 for s in [r["step"]] if s in c]
    if resumed:
        mc, md = metrics(root / "C"), metrics(root / "D")
        out["same_state_2v1"] = {
            "steps_compared": len(resumed),
            "max_abs_loss_diff": max(abs(c[s] - d[s]) for s in resumed),
            "max_rel_loss_diff": max(abs(c[s] - d[s]) / abs(c[s]) for s in resumed),
            "heldout_diff": (md["heldout_loss"] - mc["heldout_loss"]) if "heldout_loss" in mc and "heldout_loss" in md
            else None}
    return out


def fmt(x, spec=".4f"):
    return "—" if x is None else format(x, spec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    r = report(a.root)
    print(json.dumps(r, indent=1))
    print(f"\n1 GPU {fmt(r['tok_s_1gpu'], ',.0f')} tok/s; 2 GPUs {fmt(r['tok_s_2gpu'], ',.0f')} tok/s "
          f"({fmt(r.get('tok_s_per_gpu_2gpu'), ',.0f')} per GPU); efficiency {fmt(r.get('efficiency'), '.1%')}")
    for n, w in r.get("wide", {}).items():
        print(f"{n} GPUs {fmt(w['tok_s'], ',.0f')} tok/s; efficiency against 1 GPU {fmt(w['efficiency'], '.1%')}; "
              f"held-out loss {fmt(w['heldout_loss'])}")
    print(f"A (1 GPU) held-out loss {fmt(r['A_heldout_loss'])}\n")
    print("| run | steps compared | max |Δ loss| | mean |Δ loss| | held-out loss | Δ held-out |")
    print("|---|---|---|---|---|---|")
    for k, row in r["runs"].items():
        print(f"| {k}: {row['what']} | {row['steps_compared']} | {fmt(row['max_abs_loss_diff'])} | "
              f"{fmt(row['mean_abs_loss_diff'])} | {fmt(row['heldout_loss'])} | {fmt(row.get('heldout_diff'), '+.4f')} |")
    if "rerun_max_abs_loss_diff" in r["runs"].get("B", {}):
        print(f"\nB's first half (a rerun of A on 1 GPU): max |Δ loss| {fmt(r['runs']['B']['rerun_max_abs_loss_diff'])}")
    if "same_state_2v1" in r:
        x = r["same_state_2v1"]
        print(f"From C's checkpoint, 2 GPUs (C) vs 1 GPU (D) over {x['steps_compared']} logged steps: "
              f"max |Δ loss| {fmt(x['max_abs_loss_diff'], '.2e')} (relative {fmt(x['max_rel_loss_diff'], '.1e')}), "
              f"Δ held-out {fmt(x['heldout_diff'], '+.2e')}")
    if a.json:
        a.json.write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
