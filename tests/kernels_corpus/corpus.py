"""The planted-bug corpus: each folder holds original.py (the Python original), spec.json, correct kernels
(ok*.c or ok*.cu, must PASS) and planted-bug variants (bug_<class>.c/.cu, must FAIL; the first comment line
names the bug). CUDA folders (spec language "cuda") hold .cu files: on a machine without a GPU these are
only compiled and must be judged UNVERIFIED.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent

# Bug class of each planted variant, as the issue lists them.
CLASSES = {
    "bug_tail": "tail", "bug_alignment": "alignment", "bug_aliasing": "aliasing", "bug_strides": "strides",
    "bug_input_mutation": "input mutation", "bug_output_cache": "output caching/reuse",
    "bug_omp_race": "OpenMP race", "bug_nan": "NaN handling", "bug_overflow": "NaN/Inf handling",
    "bug_precision_drop": "precision drop", "bug_hardcoded_shape": "hard-coded shape",
    "bug_fallback_reference": "fallback to the reference", "bug_timing_skip_repeat": "timing trick",
    "bug_timing_lazy_thread": "timing trick", "bug_timing_memo": "timing trick",
    "bug_overread": "out-of-bounds read",
    # CUDA
    "bug_hardcoded_grid": "hard-coded grid", "bug_race": "shared-memory race",
    "bug_uninit_smem": "uninitialised shared memory", "bug_uninit_scratch": "uninitialised device memory",
    "bug_pow2": "reduction assumes a power-of-two block", "bug_async_return": "returns before the kernel ends",
    "bug_divergent_barrier": "barrier in divergent code",
}


@dataclass
class Entry:
    folder: str
    kernel: Path
    spec_path: Path
    ref: str
    expect: str   # PASS or FAIL
    bug: str      # bug class, "" for correct kernels

    @property
    def language(self) -> str:
        return "cuda" if self.kernel.suffix == ".cu" else "c"

    @property
    def id(self) -> str:
        return f"{self.folder}/{self.kernel.name}"


def entries() -> list[Entry]:
    out = []
    for d in sorted(p for p in ROOT.iterdir() if (p / "spec.json").exists()):
        name = json.loads((d / "spec.json").read_text())["name"]
        for k in sorted([*d.glob("*.c"), *d.glob("*.cu")]):
            bug = CLASSES.get(k.stem, "") if k.stem.startswith("bug_") else ""
            if k.stem.startswith("bug_") and not bug:
                raise ValueError(f"{k}: unknown bug class")
            out.append(Entry(d.name, k, d / "spec.json", f"{d / 'original.py'}::{name}",
                             "FAIL" if bug else "PASS", bug))
    return out


def judge_table(judged: list[tuple[Entry, str, str]]) -> str:
    """Markdown table: kernel, bug class, strong verdict (with the failing check), naive verdict."""
    rows = ["| kernel | planted bug | ckls verify | KernelBench-style check |", "|---|---|---|---|"]
    for e, strong, naive in judged:
        rows.append(f"| {e.id} | {e.bug or '(correct)'} | {strong} | {naive} |")
    caught = sum(1 for e, s, _ in judged if e.bug and s.startswith("FAIL"))
    naive_caught = sum(1 for e, _, n in judged if e.bug and n == "FAIL")
    bugs = sum(1 for e, _, _ in judged if e.bug)
    rows.append(f"\nplanted bugs caught: ckls verify {caught}/{bugs}, naive check {naive_caught}/{bugs}")
    return "\n".join(rows)
