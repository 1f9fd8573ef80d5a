"""Value families, data patterns, scalars and memory layouts for test inputs.

Every array lives inside a larger guarded buffer: the bytes around it (and between the elements of a strided
view) hold a sentinel of that buffer's own (a NaN with a per-buffer payload for floats, a per-buffer constant
for integers), so a kernel that reads outside its array computes with it and one that writes outside it — even
a value read from another buffer's guard — is seen when the sentinel changes. Outputs are poisoned with the
same sentinel (or zero-filled) before each call.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

_SENTINEL_BITS = {4: 0x7FC0A500, 8: 0x7FF8A5A5A5A5A500}
_INT_SENTINEL = {4: 0x5A5A5A00, 8: 0x5A5A5A5A5A5A5A00}
_UINT = {4: np.uint32, 8: np.uint64}
ALIGN = 64
LAYOUTS = ("contig", "offset", "strided", "transposed", "padded", "reversed", "readonly", "overlap", "alias")
# Orthogonal to the value family: how values are arranged (ties, order, repetition).
PATTERNS = ("random", "ties", "sorted", "reversed", "constant", "wide")

# Scale of the huge/tiny families per dtype: large enough to overflow naive intermediates (exp(x), x*x*n),
# small enough that the exact result stays representable.
_HUGE = {np.dtype(np.float32): 1e18, np.dtype(np.float64): 1e150}
_TINY = {np.dtype(np.float32): 1e-18, np.dtype(np.float64): 1e-150}
_DENORMAL = {np.dtype(np.float32): 1e-39, np.dtype(np.float64): 1e-310}


def sentinel(dtype, salt: int = 0):
    """The fill of buffer number `salt`: a quiet NaN with a payload (floats) or a loud constant (integers)."""
    dtype = np.dtype(dtype)
    it = dtype.itemsize
    if dtype.kind == "f":
        return np.array([_SENTINEL_BITS[it] | (0x11 * (salt % 15 + 1))], _UINT[it]).view(dtype)[0]
    return np.array([_INT_SENTINEL[it] + 0x13 * (salt % 15 + 1)], _UINT[it]).view(dtype)[0]


def family_values(rng: np.random.Generator, family: str, shape, dtype, rng_range=None,
                  pattern: str = "random") -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        lo, hi = rng_range or (-100, 100)
        x = rng.integers(int(lo), int(hi), size=shape, endpoint=True).astype(dtype)
        return arrange(rng, x, pattern)
    if rng_range is not None and family == "normal":
        return arrange(rng, rng.uniform(rng_range[0], rng_range[1], size=shape).astype(dtype), pattern)
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
            if flat.size:  # each of NaN, ±Inf and -0 at least once where there is room, then more at random
                k = min(flat.size, max(4, flat.size // 8))
                idx = rng.choice(flat.size, size=k, replace=False)
                vals = rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0], size=k)
                vals[:4] = rng.permutation([np.nan, np.inf, -np.inf, -0.0])[:min(4, k)]
                flat[idx] = vals
                rows = x.reshape(-1, x.shape[-1]) if x.ndim >= 2 else None
                if rows is not None and rows.shape[0] > 1:  # whole rows of one special value: -inf, then +inf/NaN
                    pick = rng.permutation(rows.shape[0])
                    rows[pick[0]] = -np.inf
                    if rows.shape[0] > 2:
                        rows[pick[1]] = rng.choice([np.nan, np.inf])
        elif family == "ints":
            x = rng.integers(-8, 9, size=shape).astype(np.float64)
        return arrange(rng, x.astype(dtype), pattern)


def arrange(rng: np.random.Generator, x: np.ndarray, pattern: str) -> np.ndarray:
    """Rearrange drawn values: ties (few distinct values), sorted or reversed rows, constant rows."""
    if pattern == "random" or x.size == 0 or x.ndim == 0:
        return x
    if pattern == "ties":
        pool = x.reshape(-1)[rng.integers(0, x.size, size=min(3, x.size))]
        return pool[rng.integers(0, pool.size, size=x.shape)].astype(x.dtype)
    if pattern == "sorted":
        return np.sort(x, axis=-1)
    if pattern == "reversed":
        return np.sort(x, axis=-1)[..., ::-1].copy()
    if pattern == "constant":
        rows = x.reshape(-1, x.shape[-1]) if x.shape[-1] else x.reshape(0, 0)
        return np.repeat(rows[:, :1], x.shape[-1], axis=1).reshape(x.shape).astype(x.dtype)
    if pattern == "wide":  # magnitudes spread over decades: cut-offs and range switches at |x| ~ 10..100 show
        if x.dtype.kind != "f":
            return x
        with np.errstate(all="ignore"):
            return (x * 10.0 ** rng.uniform(-2.0, 2.0, size=x.shape)).astype(x.dtype)
    raise ValueError(f"unknown pattern {pattern!r}")


def scalar_value(rng: np.random.Generator, dtype, rng_range=None, data: np.ndarray | None = None):
    """Half the time a plain random draw; otherwise 0, ±1, a range end, or a value of the data — the values
    where shortcuts (alpha == 0, x >= s for x > s) go wrong. Always inside the contract's range."""
    dtype = np.dtype(dtype)
    lo, hi = rng_range or ((-100, 100) if dtype.kind in "iu" else (-2.0, 2.0))
    picks = [0, 1, -1, lo, hi]
    if data is not None and data.size:
        flat = data.reshape(-1)
        v = flat[rng.integers(flat.size)]
        if np.isfinite(v):
            picks += [v.item()] * 3
    picks = [p for p in picks if lo <= p <= hi]
    if picks and rng.random() < 0.5:
        v = picks[rng.integers(len(picks))]
        return int(v) if dtype.kind in "iu" else float(dtype.type(v))
    if dtype.kind in "iu":
        return int(rng.integers(int(lo), int(hi), endpoint=True))
    return float(dtype.type(rng.uniform(lo, hi)))


def landmarks(n: int) -> set[int]:
    """Positions a cache's fingerprint would sample: the ends, halves, thirds ... eighths, both roundings."""
    out = {0, 1, n - 1, n - 2}
    for d in range(2, 9):
        for k in range(d + 1):
            out |= {n * k // d, (n - 1) * k // d, min(n - 1, -(-n * k // d))}
    return {i for i in out if 0 <= i < n}


def perturb(rng: np.random.Generator, x: np.ndarray, family: str, rng_range=None) -> np.ndarray:
    """x with one or two elements changed, away from the positions a fingerprint would sample: the next call's
    arrays, so a cache keyed on part of the input (or on the pointer) hits and shows."""
    y = np.array(x, copy=True)
    if y.size == 0:
        return y
    flat = y.reshape(-1)
    marks, picks, want = landmarks(flat.size), [], int(rng.integers(1, 3))
    for _ in range(64):  # positions off the landmarks (all of them are landmarks only in tiny arrays)
        i = int(rng.integers(flat.size))
        if i not in marks or len(marks) >= flat.size:
            picks.append(i)
        if len(picks) == want:
            break
    idx = np.unique(np.asarray(picks or [flat.size - 1]))
    fresh = family_values(rng, family if family != "special" else "normal", (idx.size,), y.dtype, rng_range)
    same = fresh == flat[idx]
    if np.any(same) and y.dtype.kind == "f":
        fresh[same] = fresh[same] + np.asarray(1, y.dtype)
    elif np.any(same):
        lo = rng_range[0] if rng_range else -100
        fresh[same] = np.where(flat[idx][same] == lo, lo + 1, lo).astype(y.dtype)
    flat[idx] = fresh
    return y


def _strides(shape, layout: str, may_view: bool, salt: int = 0) -> list[int]:
    """Element strides. The padding grows with the buffer's number, so two arrays of one shape never share
    strides (a kernel that walks one with the other's strides shows)."""
    nd = len(shape)
    st = [0] * nd
    if layout == "transposed" and may_view and nd >= 2:
        acc = 1
        for d in range(nd):  # column-major with padding per column
            st[d] = acc
            acc *= shape[d] + (1 + salt if d == 0 else 0)
        return st
    if layout == "strided" and may_view and nd >= 1:
        acc = 2
        for d in reversed(range(nd)):  # every other element, rows padded
            st[d] = acc
            acc = acc * shape[d] + 3 + salt
        return st
    if layout == "padded" and may_view and nd >= 1:
        acc = 1
        for d in reversed(range(nd)):  # unit inner stride, rows padded (like u[:, 1:-1])
            st[d] = acc
            acc = acc * shape[d] + (2 + salt if d == nd - 1 else 0)
        return st
    acc = 1
    for d in reversed(range(nd)):
        st[d] = acc
        acc *= shape[d]
    if layout == "reversed" and may_view:
        st = [-s for s in st]  # every dimension walks backwards (negative strides)
    return st


class Buffer:
    """One array inside a guarded allocation: in a cell's shared arena (mirrored whole on the device by the CUDA
    cell), or in this process."""

    def __init__(self, shape, dtype, layout: str, pad: int, may_view: bool, device: bool = False, arena=None,
                 salt: int = 0, readonly: bool = False):
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self.salt, self.readonly = salt, readonly
        it = self.dtype.itemsize
        elem_strides = _strides(self.shape, layout, may_view, salt)
        self.elem_strides = tuple(elem_strides)
        nonempty = all(self.shape)
        low = sum((s - 1) * st for s, st in zip(self.shape, elem_strides) if st < 0) if nonempty else 0
        high = sum((s - 1) * st for s, st in zip(self.shape, elem_strides) if st > 0) if nonempty else -1
        span = high - low + 1 if nonempty else 0
        misalign = 1 if layout in ("offset", "strided", "transposed", "padded", "reversed") else 0
        # pad == 0 is the sanitizer layout: the array ends exactly at the end of its allocation, so the
        # first byte past it is the allocator's red zone.
        slack = ALIGN // it if pad else 0
        n = max(pad * 2 + span + misalign + slack, 1)
        if arena is not None:
            raw, self.arena_offset = arena.alloc(n * it)
            self.base = raw.view(self.dtype)
            # A device mirror's base is what cuMemAlloc returns (256-byte aligned): count from the base's start.
            start_addr = 0 if device else arena.address(self.arena_offset)
        else:
            self.base, self.arena_offset = np.empty(n, self.dtype), None
            # A device mirror's base is what cuMemAlloc returns (256-byte aligned): count from the base's start.
            start_addr = 0 if device else self.base.ctypes.data
        self.arena = arena
        self.fill = sentinel(self.dtype, salt)
        self.base[...] = self.fill
        addr = start_addr + pad * it
        skip = ((-addr) % ALIGN) // it if pad else 0
        self.lowest = pad + skip + misalign      # index in base of the lowest-addressed element
        self.offset = self.lowest - low          # index in base of element [0, 0, ...]
        self.span = span
        self.array = as_strided(self.base[self.offset:], shape=self.shape,
                                strides=tuple(st * it for st in elem_strides), writeable=True)
        mask = np.zeros(self.base.shape, bool)
        if span:
            as_strided(mask[self.offset:], shape=self.shape,
                       strides=tuple(st * mask.itemsize for st in elem_strides), writeable=True)[...] = True
        self.outside = ~mask

    @property
    def address(self) -> int:
        """Where element [0, ...] is, as the candidate sees it."""
        if self.arena is not None:
            return self.arena.address(self.arena_offset + self.offset * self.dtype.itemsize, self.readonly)
        return self.base.ctypes.data + self.offset * self.dtype.itemsize

    @property
    def window(self) -> tuple[int, int]:
        """The bytes its elements span, as the candidate sees them (the sanitizer run's heap block)."""
        it = self.dtype.itemsize
        lo = self.address + (self.lowest - self.offset) * it
        return lo, lo + self.span * it

    def poison(self, zero: bool = False) -> None:
        self.array[...] = 0 if zero else self.fill

    def guard_intact(self) -> bool:
        raw = self.base.view(_UINT[self.dtype.itemsize])
        want = np.array([self.fill], self.dtype).view(_UINT[self.dtype.itemsize])[0]
        return bool(np.all(raw[self.outside] == want))
