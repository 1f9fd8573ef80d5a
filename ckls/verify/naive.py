"""A KernelBench-style check, kept only to show what it misses: one shape (the spec's typical sizes), five
random normal inputs, fresh contiguous aligned buffers, the reference run first on the same inputs, and one
allclose(rtol=1e-2, atol=1e-2). It still runs the candidate in the cell, so a crash is a FAIL, not ours."""
from __future__ import annotations

import os
import random
import shutil
import tempfile

from . import build as build_mod
from .cell import build_cell
from .report import FAIL, PASS
from .run import _abs_ref
from .sandbox import Crash, Limits, Worker
from .spec import KernelSpec


def naive_check(ref: str, kernel: str, spec: KernelSpec, seed: int | None = None, trials: int = 5,
                limits: Limits | None = None) -> str:
    seed = random.SystemRandom().getrandbits(32) if seed is None else seed
    work = tempfile.mkdtemp(prefix="ckls-naive-")
    os.chmod(work, 0o755)
    try:
        b = build_mod.build_c(kernel, work, "opt")
        if b.so_path is None:  # a compile error fails any check; forbidden imports are not looked at here
            return FAIL
        exe, _ = build_cell(spec, work, sanitizer=False)
        init = {"spec": spec.to_dict(), "so": b.so_path, "ref": _abs_ref(ref), "guard_pad": 16, "settle_s": 0,
                "cell": exe}
        sizes = {s.name: s.typical for s in spec.sizes}
        with Worker(init, limits, isolate=False) as w:
            try:
                r = w.request({"op": "naive", "sizes": sizes, "seed": seed, "trials": trials})
            except Crash:
                return FAIL
        return PASS if r.get("ok") else FAIL
    finally:
        shutil.rmtree(work, ignore_errors=True)
