"""Dot-kernel throughput: GB/s of weight bytes streamed through vec_dot over a whole weight matrix on one
thread, scalar vs each SIMD ISA this CPU has (median of repeats), four rows at a time through the ISA's 4-row
kernel where it has one (Q8_0, Q4_0 on AVX2), as a matmul would.

    python bench/kernels.py [--rows 896] [--cols 4864] [--repeats 15] [--ggml]

--ggml adds llama.cpp's own dot kernels (ggml_vec_dot_*, from llama-cpp-python's libggml-cpu) on the same
weights and activations, looped in C like ours, one row at a time as ggml's vec_dot path runs them (llama.cpp's repacked multi-row
GEMV kernels for Q4_0/Q4_K are not reachable this way and not measured).

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


def bench_type(t: int, rows: int, cols: int, isas: list[int], repeats: int, rng, ggml=None) -> dict:
    """GB/s per ISA (and under key "ggml" when given llama.cpp's loop); the contenders take turns within each
    repeat so machine noise hits them alike."""
    w_f = (rng.standard_normal(rows * cols) * 0.05).astype(np.float32)
    rb = lib.ckls_row_bytes(t, cols)
    w = np.zeros(rows * rb, np.uint8)
    check(lib.ckls_quantize_rows(t, _fp(w_f), ffi.from_buffer(w), rows, cols, ffi.NULL))
    x = rng.standard_normal(cols).astype(np.float32)
    vt = lib.ckls_type_vec_dot_type(t)
    out = np.zeros(rows, np.float32)
    runs = {}
    for isa in isas:
        xq = np.zeros(lib.ckls_row_bytes(vt, cols), np.uint8)
        check(lib.ckls_kernel_quantize_act(isa, vt, _fp(x), ffi.from_buffer(xq), cols))
        args = (isa, t, rows, cols, ffi.from_buffer(w), ffi.from_buffer(xq), _fp(out))
        runs[isa] = (lambda a=args, keep=xq: lib.ckls_kernel_vec_dot_rows(*a))
    if ggml is not None and ggml[1].get(t):
        mod, fns = ggml
        f = mod.ffi
        xq = np.zeros(lib.ckls_row_bytes(vt, cols), np.uint8)
        check(lib.ckls_kernel_quantize_act(isas[-1], vt, _fp(x), ffi.from_buffer(xq), cols))
        args = (f.cast("void *", fns[t]), rows, cols, f.cast("float *", f.from_buffer(out)),
                f.cast("const char *", f.from_buffer(w)), rb, f.from_buffer(xq))
        runs["ggml"] = (lambda a=args, keep=xq: mod.lib.row_loop(*a))
    for run in runs.values():
        run()  # warm-up (pages, caches)
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for k, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[k].append(time.perf_counter() - t0)
    return {k: w.nbytes / statistics.median(v) / 1e9 for k, v in times.items()}


GGML_DOTS = {lib.CKLS_TYPE_Q8_0: "ggml_vec_dot_q8_0_q8_0",
             lib.CKLS_TYPE_Q4_0: "ggml_vec_dot_q4_0_q8_0", lib.CKLS_TYPE_Q4_K: "ggml_vec_dot_q4_K_q8_K",
             lib.CKLS_TYPE_Q6_K: "ggml_vec_dot_q6_K_q8_K"}


def ggml_row_loop():
    """(loop, {type: function pointer}) for llama.cpp's dot kernels, or None when llama-cpp-python is missing."""
    try:
        import ctypes
        import tempfile

        import cffi
        import llama_cpp
    except ImportError:
        return None
    libdir = pathlib.Path(llama_cpp.__file__).parent / "lib"
    ctypes.CDLL(str(libdir / "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    cpu = ctypes.CDLL(str(libdir / "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
    cpu.ggml_cpu_init()
    builder = cffi.FFI()
    builder.cdef("void row_loop(void *fn, int rows, int n, float *out, const char *w, long rb, const void *xq);")
    builder.set_source("_ckls_bench_ggml_loop", """
        #include <stddef.h>
        typedef void (*dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);
        void row_loop(void *fn, int rows, int n, float *out, const char *w, long rb, const void *xq) {
            for (int r = 0; r < rows; r++) ((dot_fn)fn)(n, out + r, 0, w + r * rb, 0, xq, 0, 1);
        }""", extra_compile_args=["-O2"])
    tmp = tempfile.mkdtemp(prefix="ckls-bench-")
    so = builder.compile(tmpdir=tmp, verbose=False)
    import importlib.util

    spec = importlib.util.spec_from_file_location("_ckls_bench_ggml_loop", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fns = {t: ctypes.cast(getattr(cpu, name), ctypes.c_void_p).value for t, name in GGML_DOTS.items() if name}
    return mod, fns


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=896)
    ap.add_argument("--cols", type=int, default=4864)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--ggml", action="store_true", help="add llama.cpp's dot kernels (needs llama-cpp-python)")
    a = ap.parse_args(argv)
    loop = ggml_row_loop() if a.ggml else None
    if a.ggml and loop is None:
        print("--ggml: llama-cpp-python (and cffi's compiler) not available; skipping that column")
    isas = [i for i in range(lib.CKLS_ISA_COUNT) if lib.ckls_isa_available(i)]
    names = [ffi.string(lib.ckls_isa_name(i)).decode() for i in isas]
    rng = np.random.default_rng(0)
    print(f"vec_dot over {a.rows} x {a.cols}, 1 thread, median of {a.repeats}; GB/s of weight bytes")
    print(f"{'type':6} {'MB':>7} " + " ".join(f"{n:>9}" for n in names) +
          ("   speedup" if len(isas) > 1 else "") + ("      ggml  ours/ggml" if loop else ""))
    for name, t in TYPES:
        r = bench_type(t, a.rows, a.cols, isas, a.repeats, rng, loop)
        mb = a.rows * lib.ckls_row_bytes(t, a.cols) / 1e6
        line = f"{name:6} {mb:7.1f} " + " ".join(f"{r[i]:9.2f}" for i in isas)
        if len(isas) > 1:
            line += f"   {r[isas[-1]] / r[isas[0]]:6.1f}x"
        if "ggml" in r:
            line += f"  {r['ggml']:8.2f}  {r[isas[-1]] / r['ggml']:8.2f}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
