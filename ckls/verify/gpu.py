"""Calling a CUDA candidate from the harness: device mirrors of the guarded host buffers, the call, the copies
back, and the GPU benchmark (CUDA events). Runs inside the sandboxed harness process only.

Each guarded host Buffer (values.py) gets a device allocation of the same size holding the same bytes: the
array where the candidate may read and write, and NaN-sentinel guards around it (none in the sanitizer
layout, where the array ends at the end of its allocation, so compute-sanitizer sees the first byte past it
as out of bounds). Before a call every mirror is uploaded whole (inputs, poisoned outputs, guards); right after
the candidate returns, every mirror is downloaded whole on the legacy default stream, so the host-side checks
(guards, inputs unchanged, results, late writes) are the ones the C path uses.
"""
from __future__ import annotations

import ctypes
import time
import weakref

import numpy as np

from .cudadrv import STICKY, CudaError, Device

_CTYPE = {"f32": ctypes.c_float, "f64": ctypes.c_double, "i32": ctypes.c_int32, "i64": ctypes.c_int64}


class CudaKernel:
    def __init__(self, spec, so_path: str):
        self.spec = spec
        self.dev = Device()  # the primary context, current before the candidate's runtime starts
        self.lib = ctypes.CDLL(so_path)
        self.fn = getattr(self.lib, spec.name)
        self.fn.restype = None
        types = [ctypes.c_int64] * len(spec.sizes)
        for a in spec.args:
            if a.kind == "scalar":
                types.append(_CTYPE[a.dtype])
            else:
                types.append(ctypes.c_void_p)
                if a.views:
                    types += [ctypes.c_int64] * len(a.shape)
        self.fn.argtypes = types
        self.ev = (self.dev.event(), self.dev.event())
        self.scribble = True
        self.hold_s = 1e-3

    def set_threads(self, n: int) -> None:
        pass

    # ---- device mirrors ------------------------------------------------------------------------------
    def _mirror(self, buf) -> int:
        ptr = getattr(buf, "dptr", None)
        if ptr is None:
            ptr = buf.dptr = self.dev.alloc(buf.base.nbytes)
            weakref.finalize(buf, self.dev.free, ptr)
        return ptr

    @staticmethod
    def _unique(bufs: dict) -> list:
        seen, out = set(), []
        for b in bufs.values():
            if id(b) not in seen:
                seen.add(id(b))
                out.append(b)
        return out

    def upload(self, bufs: dict) -> None:
        for b in self._unique(bufs):
            self.dev.htod(self._mirror(b), b.base.ctypes.data, b.base.nbytes)

    def download(self, bufs: dict) -> None:
        for b in self._unique(bufs):
            self.dev.dtoh(b.base.ctypes.data, self._mirror(b), b.base.nbytes)

    def args(self, sizes: dict, bufs: dict, scalars: dict) -> list:
        out = [int(sizes[s.name]) for s in self.spec.sizes]
        for a in self.spec.args:
            if a.kind == "scalar":
                out.append(scalars[a.name])
                continue
            b = bufs[a.name]
            out.append(self._mirror(b) + b.offset * b.dtype.itemsize)
            if a.views:
                out += list(b.elem_strides)
        return out

    # ---- the call --------------------------------------------------------------------------------------
    def call(self, sizes: dict, bufs: dict, scalars: dict) -> float:
        """Upload, call, download at once (no waiting beyond what stream 0 waits for). The GPU is held busy
        for hold_s from a stream nothing waits for, so the candidate's kernels start only after that while the
        download on stream 0 waits only for what the contract lets it wait for. Returns the device time
        between events recorded on stream 0 before and after the call (hold included)."""
        self.upload(bufs)
        args = self.args(sizes, bufs, scalars)
        if self.scribble:
            self.dev.scribble_shared()
        if self.hold_s:
            self.dev.hold(self.hold_s)
        self.dev.record(self.ev[0])
        self.fn(*args)
        self.dev.record(self.ev[1])
        self.download(bufs)
        return self.dev.elapsed_s(*self.ev)

    def refresh(self, bufs: dict) -> None:
        """After the settle time: wait for all device work, then download again (late writes show)."""
        self.dev.synchronize()
        self.download(bufs)


def cuda_failure(e: CudaError, what: str) -> dict:
    """A CUDA error during a call is the candidate's failure; a sticky one also ends the harness process."""
    return {"ok": False, "check": "cuda_error", "call": what, "detail": str(e), "restart": e.code in STICKY}


# ---- benchmark ------------------------------------------------------------------------------------------
def bench_cuda(judge, req: dict) -> dict:
    """Device time per call from CUDA events on stream 0 with L2 flushed before each run (transfers
    excluded), wall time of upload + call + download (transfers included), the original and the NumPy
    version on the CPU, and the NumPy version on CuPy arrays when CuPy is importable."""
    from .bench import summarize, time_calls
    k: CudaKernel = judge.kernel
    dev = k.dev
    sizes, budget = req["sizes"], float(req.get("budget_s", 2.0))
    rng = np.random.default_rng(req["seed"])
    vals, scal = judge.new_values(rng, sizes, "normal")
    bufs, _ = judge.allocate(sizes, "contig")
    for a in judge.spec.arrays:
        if a.role != "out":
            bufs[a.name].array[...] = vals[a.name]
    k.upload(bufs)
    args = k.args(sizes, bufs, scal)
    for _ in range(3):
        k.fn(*args)
    dev.synchronize()
    dev_t, t_end = [], time.perf_counter() + budget * 0.4
    while len(dev_t) < 1000 and (len(dev_t) < 10 or time.perf_counter() < t_end):
        dev.flush_l2()
        dev.record(k.ev[0])
        k.fn(*args)
        dev.record(k.ev[1])
        dev_t.append(dev.elapsed_s(*k.ev))
    dev.synchronize()
    ins = [b for n, b in bufs.items() if judge.spec.arg(n).role != "out"]
    outs = [b for n, b in bufs.items() if judge.spec.arg(n).role != "in"]

    def with_transfers():
        for b in ins:
            dev.htod(k._mirror(b), b.base.ctypes.data, b.base.nbytes)
        k.fn(*args)
        for b in outs:
            dev.dtoh(b.base.ctypes.data, k._mirror(b), b.base.nbytes)

    res = {"kernel": summarize(dev_t),
           "kernel_with_transfers": summarize(time_calls(with_transfers, budget * 0.2, max_runs=200))}
    f64 = [scal[a.name] if a.kind == "scalar" else
           (vals[a.name].astype(np.float64) if a.is_float else vals[a.name]) for a in judge.spec.inputs]
    native = [scal[a.name] if a.kind == "scalar" else vals[a.name] for a in judge.spec.inputs]
    res["original"] = summarize(time_calls(lambda: judge.ref(*f64), budget * 0.2, max_runs=50))
    if judge.numpy_fn is not None:
        res["numpy"] = summarize(time_calls(lambda: judge.numpy_fn(*native), budget * 0.1))
        cp_t = _cupy_times(judge.numpy_fn, native, budget * 0.1)
        if cp_t:
            res["cupy"] = summarize(cp_t)
    return {"ok": True, "timings": res, "device": {"name": dev.name, "sms": dev.sms, "cc": list(dev.cc),
                                                   "peak_bytes_per_s": dev.peak_bytes_per_s,
                                                   "clock_hz": dev.clock_hz}}


def _cupy_times(fn, native, budget_s: float) -> list[float] | None:
    """The NumPy version run on CuPy arrays (NumPy's dispatch protocols send it to CuPy), timed by wall
    clock with a device synchronise after each call; None when CuPy is absent or the function does not
    run on CuPy arrays."""
    try:
        import cupy as cp
    except Exception:
        return None
    try:
        args = [cp.asarray(v) if isinstance(v, np.ndarray) else v for v in native]
        fn(*args)
        cp.cuda.Device().synchronize()
        out = []
        t_end = time.perf_counter() + budget_s
        while len(out) < 200 and (len(out) < 5 or time.perf_counter() < t_end):
            t0 = time.perf_counter()
            fn(*args)
            cp.cuda.Device().synchronize()
            out.append(time.perf_counter() - t0)
        return out
    except Exception:
        return None
