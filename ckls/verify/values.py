"""Value families and memory layouts for test inputs.

Every array lives inside a larger guarded buffer: the bytes around it (and between the elements of a strided
view) hold a NaN-payload sentinel, so a kernel that reads outside its array computes NaN and one that writes
outside it is seen when the sentinel changes. Outputs are poisoned with the same NaN before each call.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Fill patterns: quiet NaNs with a payload for floats, a loud constant for integers.
SENTINEL = {
    np.dtype(np.float32): np.array([0x7FC0A5A5], np.uint32).view(np.float32)[0],
    np.dtype(np.float64): np.array([0x7FF8A5A5A5A5A5A5], np.uint64).view(np.float64)[0],
    np.dtype(np.int32): np.int32(0x5A5A5A5A),
    np.dtype(np.int64): np.int64(0x5A5A5A5A5A5A5A5A),
}
_UINT = {4: np.uint32, 8: np.uint64}
ALIGN = 64
LAYOUTS = ("contig", "offset", "strided", "transposed", "alias")

# Scale of the huge/tiny families per dtype: large enough to overflow naive intermediates (exp(x), x*x*n),
# small enough that the exact result stays representable.
_HUGE = {np.dtype(np.float32): 1e18, np.dtype(np.float64): 1e150}
_TINY = {np.dtype(np.float32): 1e-18, np.dtype(np.float64): 1e-150}
_DENORMAL = {np.dtype(np.float32): 1e-39, np.dtype(np.float64): 1e-310}


def family_values(rng: np.random.Generator, family: str, shape, dtype, rng_range=None) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        lo, hi = rng_range or (-100, 100)
        return rng.integers(int(lo), int(hi), size=shape, endpoint=True).astype(dtype)
    if rng_range is not None and family == "normal":
        return rng.uniform(rng_range[0], rng_range[1], size=shape).astype(dtype)
    x = rng.standard_normal(shape)
    with np.errstate(all="ignore"):
        if family == "huge":
            x = x * _HUGE[dtype]
        elif family == "tiny":
            x = x * _TINY[dtype]
        elif family == "denormal":
            x = rng.uniform(-1.0, 1.0, size=shape) * _DENORMAL[dtype]
        elif family == "special":
            flat = x.reshape(-1)
            if flat.size:
                k = max(1, flat.size // 8)
                idx = rng.choice(flat.size, size=min(k, flat.size), replace=False)
                flat[idx] = rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0], size=idx.size)
        elif family == "ints":
            x = rng.integers(-8, 9, size=shape).astype(np.float64)
        return x.astype(dtype)


def scalar_value(rng: np.random.Generator, dtype, rng_range=None):
    dtype = np.dtype(dtype)
    lo, hi = rng_range or ((-100, 100) if dtype.kind in "iu" else (-2.0, 2.0))
    if dtype.kind in "iu":
        return int(rng.integers(int(lo), int(hi), endpoint=True))
    return float(dtype.type(rng.uniform(lo, hi)))


class Buffer:
    """One array inside a guarded allocation."""

    def __init__(self, shape, dtype, layout: str, pad: int, may_view: bool, device: bool = False):
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        it = self.dtype.itemsize
        nd = len(self.shape)
        if layout == "transposed" and may_view and nd >= 2:
            elem_strides = [1] * nd
            acc = 1
            for d in range(nd):  # column-major with one element of padding per column
                elem_strides[d] = acc
                acc *= self.shape[d] + (1 if d == 0 else 0)
        elif layout == "strided" and may_view and nd >= 1:
            elem_strides = [0] * nd
            acc = 2
            for d in reversed(range(nd)):  # every other element, rows padded by 3
                elem_strides[d] = acc
                acc = acc * self.shape[d] + 3
        else:
            elem_strides = [0] * nd
            acc = 1
            for d in reversed(range(nd)):
                elem_strides[d] = acc
                acc *= self.shape[d]
        self.elem_strides = tuple(elem_strides)
        span = 1 + sum((s - 1) * st for s, st in zip(self.shape, elem_strides)) if all(self.shape) else 0
        misalign = 1 if layout in ("offset", "strided", "transposed") else 0
        # pad == 0 is the sanitizer layout: the array ends exactly at the end of its allocation, so the
        # first byte past it is the allocator's red zone.
        slack = ALIGN // it if pad else 0
        self.base = np.empty(max(pad * 2 + span + misalign + slack, 1), self.dtype)
        self.base[...] = SENTINEL[self.dtype]
        # Start at a 64-byte boundary (+ one element for the misaligned layouts). A device mirror's base is
        # what cuMemAlloc returns (256-byte aligned), so there the boundary is counted from the base's start.
        addr = (0 if device else self.base.ctypes.data) + pad * it
        skip = ((-addr) % ALIGN) // it if pad else 0
        self.offset = pad + skip + misalign
        self.array = as_strided(self.base[self.offset:], shape=self.shape,
                                strides=tuple(st * it for st in elem_strides), writeable=True)
        mask = np.zeros(self.base.shape, bool)
        if span:
            as_strided(mask[self.offset:], shape=self.shape,
                       strides=tuple(st * mask.itemsize for st in elem_strides), writeable=True)[...] = True
        self.outside = ~mask

    @property
    def address(self) -> int:
        return self.base.ctypes.data + self.offset * self.dtype.itemsize

    def poison(self) -> None:
        self.array[...] = SENTINEL[self.dtype]

    def guard_intact(self) -> bool:
        raw = self.base.view(_UINT[self.dtype.itemsize])
        want = np.array([SENTINEL[self.dtype]], self.dtype).view(_UINT[self.dtype.itemsize])[0]
        return bool(np.all(raw[self.outside] == want))
