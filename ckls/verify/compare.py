"""Comparing a kernel's output with the float64 reference, per dtype.

The reference is rounded to the output dtype first. NaN must meet NaN and an infinity the same infinity.
Finite values pass when |got - want| <= rtol*|want| + max(atol*scale, 4 ulp of the largest input), where scale is
the largest finite |want| of that output: tolerances are relative, so a near-constant or all-zero answer cannot
hide under an absolute epsilon when the values are tiny, and an output that cancels to ~0 (the variance of a
constant row) is held to the rounding of what it was computed from, not to its own size.
"""
from __future__ import annotations

import numpy as np


ULPS = 4  # an output that cancels to ~0 may be off by this many units in the last place of its largest input


def mismatch(got: np.ndarray, want: np.ndarray, rtol: float, atol: float, input_scale: float = 0.0,
             floor: np.ndarray | None = None) -> dict | None:
    """None when got matches want, else a description of the first bad element. input_scale: the largest finite
    |value| of the call's float inputs — an output that cancels to ~0 (the variance of a constant row) is
    judged against the rounding of its inputs, not against its own size. floor: a per-element allowance (the
    reference's own change when its inputs move by a few ulps, see harness.Judge.sensitivity)."""
    got = np.asarray(got)
    with np.errstate(all="ignore"):
        want = np.asarray(want).astype(got.dtype)
    if got.shape != want.shape:
        return {"why": f"shape {got.shape} != reference shape {want.shape}"}
    if got.size == 0:
        return None
    if got.dtype.kind in "iu":
        bad = got != want
    else:
        g = got.astype(np.float64)
        w = want.astype(np.float64)
        nan_w, nan_g = np.isnan(w), np.isnan(g)
        inf_w = np.isinf(w)
        fin = ~(nan_w | inf_w)
        bad = nan_w != nan_g
        bad |= inf_w & (g != w)
        scale = float(np.max(np.abs(w[fin]))) if fin.any() else 0.0
        per = None if floor is None else np.asarray(floor, np.float64)
        floor = ULPS * float(np.finfo(got.dtype).eps) * input_scale  # rounding of the inputs themselves
        with np.errstate(all="ignore"):
            err = np.abs(g - w)
            allowed = np.maximum(max(atol * scale, floor), 0.0 if per is None else per)
            bad |= fin & ~(err <= rtol * np.abs(w) + allowed)
    if not bad.any():
        return None
    flat = int(np.flatnonzero(bad.reshape(-1))[0])
    idx = tuple(int(i) for i in np.unravel_index(flat, got.shape))
    return {"why": "values differ", "index": list(idx), "got": _num(got[idx]), "want": _num(want[idx]),
            "bad": int(bad.sum()), "of": int(bad.size)}


def same_bits(a: np.ndarray, b: np.ndarray) -> dict | None:
    """Bitwise equality (for determinism); NaNs with the same payload count as equal."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if a.shape != b.shape:
        return {"why": f"shape {a.shape} != {b.shape}"}
    ua, ub = a.view(np.uint8).reshape(a.size, -1) if a.size else a, b.view(np.uint8).reshape(b.size, -1) if b.size else b
    if a.size == 0:
        return None
    diff = np.any(ua != ub, axis=1)
    if not diff.any():
        return None
    flat = int(np.flatnonzero(diff)[0])
    idx = tuple(int(i) for i in np.unravel_index(flat, a.shape))
    return {"why": "results differ between identical calls", "index": list(idx), "got": _num(b[idx]),
            "want": _num(a[idx]), "bad": int(diff.sum()), "of": int(diff.size)}


def allclose_naive(got, want, rtol=1e-2, atol=1e-2) -> bool:
    """The check KernelBench-style evaluations use: one allclose with loose tolerances."""
    with np.errstate(all="ignore"):
        return bool(np.allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=rtol, atol=atol))


def _num(x):
    x = x.item() if hasattr(x, "item") else x
    if isinstance(x, float) and not np.isfinite(x):
        return repr(x)
    return x
