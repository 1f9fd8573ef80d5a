"""Dot-kernel throughput: GB/s of weight bytes streamed through vec_dot over a whole weight matrix on one
thread, scalar vs each SIMD ISA this CPU has (median of repeats).

    python bench/kernels.py [--rows 896] [--cols 4864] [--repeats 15]

Default shape = a Qwen2.5-0.5B ffn_down matrix (896 rows of 4864): a few MB per quantized type, so it mostly
sits in L3 like a decode step's working set of one layer; pass --rows 8192 to measure from DRAM.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from ckls.native import check, ffi, lib  # noqa: E402

TYPES = [("f32", lib.CKLS_TYPE_F32), ("f16", lib.CKLS_TYPE_F16), ("bf16", lib.CKLS_TYPE_BF16),
         ("q8_0", lib.CKLS_TYPE_Q8_0), ("q4_0", lib.CKLS_TYPE_Q4_0), ("q4_K", lib.CKLS_TYPE_Q4_K),
         ("q6_K", lib.CKLS_TYPE_Q6_K)]


def _fp(a):
    return ffi.cast("float *", ffi.from_buffer(a))


def bench_type(t: int, rows: int, cols: int, isas: list[int], repeats: int, rng) -> dict[int, float]:
    w_f = (rng.standard_normal(rows * cols) * 0.05).astype(np.float32)
    w = np.zeros(rows * lib.ckls_row_bytes(t, cols), np.uint8)
    check(lib.ckls_quantize_rows(t, _fp(w_f), ffi.from_buffer(w), rows, cols, ffi.NULL))
    x = rng.standard_normal(cols).astype(np.float32)
    vt = lib.ckls_type_vec_dot_type(t)
    xq = np.zeros(lib.ckls_row_bytes(vt, cols), np.uint8)
    out = np.zeros(rows, np.float32)
    result = {}
    for isa in isas:
        check(lib.ckls_kernel_quantize_act(isa, vt, _fp(x), ffi.from_buffer(xq), cols))
        args = (isa, t, rows, cols, ffi.from_buffer(w), ffi.from_buffer(xq), _fp(out))
        check(lib.ckls_kernel_vec_dot_rows(*args))  # warm-up (pages, caches)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            lib.ckls_kernel_vec_dot_rows(*args)
            times.append(time.perf_counter() - t0)
        result[isa] = w.nbytes / statistics.median(times) / 1e9
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=896)
    ap.add_argument("--cols", type=int, default=4864)
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args(argv)
    isas = [i for i in range(lib.CKLS_ISA_COUNT) if lib.ckls_isa_available(i)]
    names = [ffi.string(lib.ckls_isa_name(i)).decode() for i in isas]
    rng = np.random.default_rng(0)
    print(f"vec_dot over {a.rows} x {a.cols}, 1 thread, median of {a.repeats}; GB/s of weight bytes")
    print(f"{'type':6} {'MB':>7} " + " ".join(f"{n:>9}" for n in names) +
          ("   speedup" if len(isas) > 1 else ""))
    for name, t in TYPES:
        r = bench_type(t, a.rows, a.cols, isas, a.repeats, rng)
        mb = a.rows * lib.ckls_row_bytes(t, a.cols) / 1e6
        line = f"{name:6} {mb:7.1f} " + " ".join(f"{r[i]:9.2f}" for i in isas)
        if len(isas) > 1:
            line += f"   {r[isas[-1]] / r[isas[0]]:6.1f}x"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
