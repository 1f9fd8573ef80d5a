"""The planted-bug corpora (tests/kernels_corpus, tests/kernels_corpus2): each folder holds original.py (the Python original), spec.json, correct kernels
(ok*.c or ok*.cu, must PASS) and planted-bug variants (bug_<class>.c/.cu, must FAIL; the first comment line
names the bug). CUDA folders (spec language "cuda") hold .cu files: on a machine without a GPU these are
only compiled and must be judged UNVERIFIED.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ROOT2 = ROOT.parent / "kernels_corpus2"  # the second corpus, same layout

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
    # tests/kernels_corpus2: bugs that only show at some sizes, values, scalars, layouts or repeated calls
    "bug_acc_overflow_i32": "i32 accumulator overflows at large n",
    "bug_omp_race_large": "OpenMP race only above a size threshold",
    "bug_omp_race_luck": "OpenMP race with a small window",
    "bug_fastpath_mult64": "wrong fast path for multiples of 64",
    "bug_cache_pointer_scalar": "cache keyed on pointers and scalars",
    "bug_cache_fingerprint": "cache keyed on a data fingerprint",
    "bug_ties": "ties (>= for >)",
    "bug_sorted_shortcut": "sorted-input shortcut",
    "bug_constant_row": "constant-row shortcut",
    "bug_zero_row": "all-zero row",
    "bug_all_neginf": "all -inf window or row",
    "bug_scalar_zero": "scalar == 0 shortcut",
    "bug_scalar_one": "scalar == +-1 shortcut",
    "bug_scalar_equal": "scalars equal to each other",
    "bug_scalar_equals_data": "scalar equal to a data value",
    "bug_value_range_end": "value at the range end",
    "bug_padded_rows": "padded-row view (inner stride 1, row stride > cols)",
    "bug_negative_stride": "negative strides",
    "bug_strides_mixup": "one array's strides used for another",
    "bug_restore_input": "input mutated then restored (read-only input)",
    "bug_overlap_inputs": "overlapping inputs",
    "bug_ftz_daz": "FTZ/DAZ set and MXCSR left changed",
    "bug_cancellation": "catastrophic cancellation (offset data)",
    "bug_cutoff": "approximation cut-off in an undrawn value range",
    "bug_exclusive_scan": "exclusive instead of inclusive scan",
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


def entries(root: Path | str = ROOT) -> list[Entry]:
    """Every kernel of the corpus under root (default: this folder), correct ones and planted bugs."""
    out = []
    for d in sorted(p for p in Path(root).iterdir() if (p / "spec.json").exists()):
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
