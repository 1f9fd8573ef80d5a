"""The GPU benchmark of a CUDA candidate, through its cell (cudacell.py): nothing of the candidate runs here.

Times are the judge's clock, request to answer, less the median round trip of an empty request: the device
time of the launcher's work with L2 flushed before each run and the cell waiting for the device before it
answers ("kernel"), and the same with every buffer copied in and out ("kernel_with_transfers"). The cell's own
CUDA-event times are reported beside them ("kernel_events", not trusted: the candidate shares the cell's
process). The device's facts for the speed-of-light flags come from the driver in this process (no context).
"""
from __future__ import annotations

import time

import numpy as np

from .cudacell import FLAG_NOCOPY, FLAG_SYNC, ping_seconds
from .cudadrv import device_info


def bench_cuda(judge, req: dict) -> dict:
    """Kernel times, the original and the NumPy version on the CPU, and the NumPy version on CuPy arrays when
    CuPy is importable."""
    from .bench import summarize, time_calls
    k = judge.kernel
    sizes, budget = req["sizes"], float(req.get("budget_s", 2.0))
    rng = np.random.default_rng(req["seed"])
    vals, scal = judge.new_values(rng, sizes, "normal")
    k.reset()
    bufs, _ = judge.allocate(sizes, "contig")
    for a in judge.spec.arrays:
        if a.role != "out":
            bufs[a.name].array[...] = vals[a.name]
    for _ in range(3):  # uploads the buffers, warms the launcher
        k.call(sizes, bufs, scal, flags=FLAG_SYNC)
    trip = ping_seconds(k)
    dev_t, ev_t, t_end = [], [], time.perf_counter() + budget * 0.4
    while len(dev_t) < 1000 and (len(dev_t) < 10 or time.perf_counter() < t_end):
        k.flush()
        dev_t.append(max(k.call(sizes, bufs, scal, flags=FLAG_NOCOPY | FLAG_SYNC) - trip, 1e-9))
        ev_t.append(max(k.last.cell_ns * 1e-9, 1e-9))

    def with_transfers():
        return max(k.call(sizes, bufs, scal, flags=FLAG_SYNC) - trip, 1e-9)

    res = {"kernel": summarize(dev_t), "kernel_events": summarize(ev_t),
           "kernel_with_transfers": summarize(time_calls(with_transfers, budget * 0.2, max_runs=200,
                                                         timed_by_fn=True))}
    f64 = [scal[a.name] if a.kind == "scalar" else
           (vals[a.name].astype(np.float64) if a.is_float else vals[a.name]) for a in judge.spec.inputs]
    native = [scal[a.name] if a.kind == "scalar" else vals[a.name] for a in judge.spec.inputs]
    res["original"] = summarize(time_calls(lambda: judge.ref(*f64), budget * 0.2, max_runs=50))
    if judge.numpy_fn is not None:
        res["numpy"] = summarize(time_calls(lambda: judge.numpy_fn(*native), budget * 0.1))
        cp_t = _cupy_times(judge.numpy_fn, native, budget * 0.1)
        if cp_t:
            res["cupy"] = summarize(cp_t)
    return {"ok": True, "timings": res, "device": device_info()}


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
