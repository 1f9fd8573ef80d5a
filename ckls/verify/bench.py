"""Honest timing: warm-up, caches flushed before every timed run, medians with bootstrap confidence
intervals, and a flag when a kernel appears faster than this hardware can move the bytes or do the flops."""
from __future__ import annotations

import os
import time

import numpy as np

FLUSH_BYTES = 48 << 20   # larger than the last-level cache of the machines we run on
PEAK_BYTES_PER_S = 60e9  # above L3-resident bandwidth on 2 Zen 3 cores (about 55 GB/s)
PEAK_FLOPS_PER_CORE = {"f32": 3.6e9 * 32, "f64": 3.6e9 * 16}  # 2 FMA pipes x 8 (4) lanes x 2 flops
_flush = None


def flush_caches() -> None:
    global _flush
    if _flush is None:
        _flush = np.ones(FLUSH_BYTES // 8)
    _flush += 1.0


def time_calls(fn, budget_s: float, warmup: int = 3, max_runs: int = 200, min_runs: int = 5,
               timed_by_fn: bool = False) -> list[float]:
    """Seconds per call; each run starts with cold caches. Stops after budget_s (but runs min_runs).
    timed_by_fn: fn measures itself (and flushes what it needs) and returns its seconds."""
    for _ in range(warmup):
        fn()
    out = []
    t_end = time.perf_counter() + budget_s
    while len(out) < max_runs and (len(out) < min_runs or time.perf_counter() < t_end):
        if timed_by_fn:
            out.append(fn())
            continue
        flush_caches()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def summarize(ts: list[float], seed: int = 0) -> dict:
    """Median and a 95% bootstrap confidence interval of the median."""
    a = np.asarray(ts, np.float64)
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(a, size=(1000, a.size)), axis=1)
    return {"median_s": float(np.median(a)), "ci_lo_s": float(np.quantile(meds, 0.025)),
            "ci_hi_s": float(np.quantile(meds, 0.975)), "runs": int(a.size)}


def speedup(base: dict, kernel: dict) -> dict:
    return {"x": base["median_s"] / kernel["median_s"],
            "lo": base["ci_lo_s"] / kernel["ci_hi_s"], "hi": base["ci_hi_s"] / kernel["ci_lo_s"]}


def hardware_flags(kernel: dict, nbytes: float, flops: float | None, dtype: str, cores: int | None = None) -> list[str]:
    """Reasons the measured time is physically implausible (empty when it is plausible). The time judged is the
    low end of the median's interval plus the round trip's spread (kernel["trip_spread_s"]): a short kernel's time
    is the call's less the median round trip, and a quicker trip than the median must not read as a faster kernel
    (a correct 800 KB relu showed 95 GB/s on a busy 2-core machine that way)."""
    cores = cores or os.cpu_count() or 1
    t = kernel["ci_lo_s"] + kernel.get("trip_spread_s", 0.0)
    flags = []
    if t <= 0:
        return ["kernel time is zero"]
    if nbytes / t > PEAK_BYTES_PER_S:
        flags.append(f"moves {nbytes / t / 1e9:.0f} GB/s, above the {PEAK_BYTES_PER_S / 1e9:.0f} GB/s this "
                     "machine can read")
    peak = PEAK_FLOPS_PER_CORE.get(dtype, PEAK_FLOPS_PER_CORE["f32"]) * cores
    if flops and flops / t > peak:
        flags.append(f"{flops / t / 1e9:.0f} GFLOP/s, above the {peak / 1e9:.0f} GFLOP/s peak")
    return flags


# Arithmetic ceilings per multiprocessor and clock, generous (dense tensor-core rates of Hopper rounded up), so
# only a kernel that did not do its work crosses them.
GPU_FLOPS_PER_SM_CLOCK = {"f32": 4096, "f64": 512}


def gpu_hardware_flags(kernel: dict, nbytes: float, flops: float | None, dtype: str, device: dict) -> list[str]:
    """Reasons a GPU time is implausible. L2 is flushed before each timed run, so the bytes come from DRAM:
    more than 1.25x the device's peak DRAM bandwidth means the work was not done (or not waited for)."""
    t = kernel["ci_lo_s"]
    if t <= 0:
        return ["kernel time is zero"]
    flags = []
    peak = device["peak_bytes_per_s"] * 1.25
    if peak > 0 and nbytes / t > peak:
        flags.append(f"moves {nbytes / t / 1e9:.0f} GB/s, above 1.25x the {device['peak_bytes_per_s'] / 1e9:.0f} "
                     f"GB/s peak of the {device['name']}")
    fpeak = GPU_FLOPS_PER_SM_CLOCK.get(dtype, GPU_FLOPS_PER_SM_CLOCK["f32"]) * device["sms"] * device["clock_hz"]
    if flops and flops / t > fpeak:
        flags.append(f"{flops / t / 1e12:.0f} TFLOP/s, above the {fpeak / 1e12:.0f} TFLOP/s ceiling")
    return flags
