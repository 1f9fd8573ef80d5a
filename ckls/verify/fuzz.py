"""Which cases to run: a fixed plan of edge cases, then Hypothesis-drawn ones, and shrinking of a failure.

A case is a plain dict: {sizes, family, pattern, layout, threads, seed}. The plan always covers sizes 0, 1,
primes, tile-1/tile/tile+1, tile multiples, large, the typical size and the contract's maximum where that is
cheap, and the 2^16 region; every value family and data pattern (ties, sorted, reversed, constant rows); every
memory layout the spec allows (offset = misaligned, strided, padded rows, transposed, negative strides, read-only
inputs, overlapping inputs, aliased outputs); several OpenMP thread counts, at size too. The candidate never sees
the plan.
"""
from __future__ import annotations

import random

from .spec import KernelSpec

PRIMES = (2, 3, 5, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 65521, 262139, 1048573)
PATTERNS = ("ties", "sorted", "reversed", "constant", "wide")
RACE_REPEATS = 12
BIG_ELEMENTS = 1 << 22      # the maximum and 2^16 cases are compared when all arrays together hold no more
TYPICAL_ELEMENTS = 1 << 25  # the typical size (where the benchmark runs) is compared up to this


def size_classes(s) -> list[int]:
    """Interesting values of one size symbol, inside [min, max]."""
    large = s.large if s.large is not None else s.max
    vals = [0, 1, 2, 3, s.tile - 1, s.tile, s.tile + 1, 2 * s.tile + 1, 4 * s.tile, 8 * s.tile, 64, 128,
            s.min, large]
    vals += [p for p in PRIMES if p <= large][-3:]
    return sorted({v for v in vals if s.min <= v <= min(s.max, large)})


def layouts(spec: KernelSpec) -> list[str]:
    out = ["contig", "offset"]
    views = [a for a in spec.arrays if a.views]
    if views:
        out += ["strided", "padded", "reversed"]
        if any(len(a.shape) >= 2 for a in views):
            out.append("transposed")
    if spec.language == "c" and any(a.role == "in" and a.kind == "array" for a in spec.args):
        out.append("readonly")
    if spec.overlap_pairs():
        out.append("overlap")
    if any(a.may_alias for a in spec.arrays):
        out.append("alias")
    return out


def elements(spec: KernelSpec, sizes: dict) -> int:
    total = 0
    for a in spec.arrays:
        n = 1
        for d in spec.shape_of(a, sizes):
            n *= max(int(d), 0)
        total += n
    return total


def thread_counts(spec: KernelSpec) -> list[int]:
    return [1, 2, 3, 4, 7] if spec.openmp else [1]


def _clip(s, v):
    large = s.large if s.large is not None else s.max
    return max(s.min, min(v, s.max, large))


def _pick(s, what: str, rng: random.Random) -> int:
    cls = size_classes(s)
    if what == "prime":
        ps = [p for p in PRIMES if s.min <= p <= min(s.max, s.large or s.max) and p > s.tile]
        return ps[min(1, len(ps) - 1)] if ps else _clip(s, s.tile + 1)
    if what == "large":
        return _clip(s, s.large if s.large is not None else s.max)
    if what == "mult":  # a multiple of 64 (where vectorised fast paths switch on), else of the tile
        for v in (128, 64, 8 * s.tile, 4 * s.tile):
            if s.min <= v <= min(s.max, s.large or s.max):
                return v
        return _clip(s, s.tile)
    if what == "random":
        return rng.choice(cls)
    return _clip(s, {"zero": 0, "one": 1, "tile-1": s.tile - 1, "tile": s.tile, "tile+1": s.tile + 1,
                     "min": s.min}[what])


def plan(spec: KernelSpec, seed: int) -> list[dict]:
    """The fixed edge-case plan (values still vary with the seed)."""
    rng = random.Random(seed)
    fam0 = spec.families[0]
    threads = thread_counts(spec)
    t_default = threads[min(2, len(threads) - 1)]
    cases = []

    def add(sizes, family=fam0, layout="contig", threads=t_default, tag="", pattern="random"):
        cases.append({"sizes": sizes, "family": family, "pattern": pattern, "layout": layout, "threads": threads,
                      "seed": rng.getrandbits(32), "tag": tag})

    def same(what):
        return {s.name: _pick(s, what, rng) for s in spec.sizes}

    for what in ("zero", "one", "tile-1", "tile", "tile+1", "prime", "large"):
        add(same(what), tag=f"shape {what}")
    for _ in range(3):  # mixed shapes: each size from a different class
        add({s.name: _pick(s, "random", rng) for s in spec.sizes}, tag="shape mixed")
    for fam in spec.families:
        add(same("prime"), family=fam, tag=f"values {fam}")
        add(same("tile+1"), family=fam, tag=f"values {fam}")
        add(same("mult"), family=fam, tag=f"values {fam}")
    for sizes, fam, pinned in scalar_cases(spec, same("prime")):
        cases.append({"sizes": sizes, "family": fam, "pattern": "random", "layout": "contig", "threads": t_default,
                      "seed": rng.getrandbits(32), "tag": "scalars", "scalars": pinned})
    data_pin = {a.name: "@data" for a in spec.args if a.kind == "scalar"}
    for pat in PATTERNS:
        add(same("prime"), pattern=pat, tag=f"pattern {pat}")
        add(same("tile+1"), family=rng.choice(spec.families), pattern=pat, tag=f"pattern {pat}")
        if data_pin:  # scalars equal to a value of the data (thresholds, sorted-input shortcuts)
            add(same("prime"), pattern=pat, tag=f"pattern {pat}")
            cases[-1]["scalars"] = data_pin
    for lay in layouts(spec)[1:]:
        for what in ("prime", "tile+1", "one"):
            add(same(what), layout=lay, tag=f"layout {lay}")
        if "special" in spec.families:
            add(same("prime"), family="special", layout=lay, tag=f"layout {lay}")
    for i, (sizes, tag) in enumerate(big_shapes(spec, rng)):
        add(sizes, tag=tag, pattern="wide" if tag == "shape 2^16" and i % 2 else "random")
        cases[-1]["optional"] = True  # skipped where the original itself is too slow at these sizes
        if spec.openmp:  # races: many threads, the same call many times over, each result compared; the same
            base = cases[-1]  # inputs as the case above, so the judge computes their references once
            for t in (2, max(threads)):
                cases.append(dict(base, threads=t, tag=tag.replace("shape", "threads"), repeat=RACE_REPEATS))
    if spec.openmp:  # races show up as wrong or unrepeatable results; try them often and at size
        for t in threads:
            for _ in range(2 if t > 1 else 1):
                add(same("large"), threads=t, tag=f"threads {t}")
            if t > 1:
                add(same("prime"), threads=t, tag=f"threads {t}")
    return cases


def scalar_cases(spec: KernelSpec, sizes: dict) -> list[tuple[dict, str, dict]]:
    """Each scalar pinned at 0, 1, -1 and its range's ends (inside the range), with ordinary and special values;
    and each pair of scalars of one dtype made equal. Shortcuts such as `if (alpha == 0) return` or `lo == hi`
    show only there."""
    scalars = [a for a in spec.args if a.kind == "scalar"]
    fams = ["normal" if "normal" in spec.families else spec.families[0]]
    if "special" in spec.families:
        fams.append("special")
    out = []
    for a in scalars:
        lo, hi = a.range or ((-100, 100) if a.dtype in ("i32", "i64") else (None, None))
        for v in (0, 1, -1, lo, hi):
            if v is None or (a.range and not lo <= v <= hi):
                continue
            for fam in fams:
                out.append((sizes, fam, {a.name: v}))
    for i, a in enumerate(scalars):
        for b in scalars[i + 1:]:
            if a.dtype == b.dtype:
                for fam in fams:
                    out.append((sizes, fam, {b.name: a.name}))
    return out


def big_shapes(spec: KernelSpec, rng: random.Random) -> list[tuple[dict, str]]:
    """Outputs compared where the contract says the kernel will live, not only where it is cheap to test: the
    typical sizes, the maximum, and each size around 2^16 (the others small) — each where it is cheap enough."""
    out = []
    typical = {s.name: max(s.min, min(s.typical, s.max)) for s in spec.sizes}
    out.append((typical, "shape typical"))
    out.append(({s.name: s.max for s in spec.sizes}, "shape max"))
    for s in spec.sizes:
        small = {o.name: _clip(o, o.tile + 1) for o in spec.sizes}
        for v in (65535, 65536, 65537, 100000):
            if s.min <= v <= s.max:
                out.append((dict(small, **{s.name: v}), "shape 2^16"))
    seen, keep = set(), []
    for sizes, tag in out:
        key = tuple(sorted(sizes.items()))
        cap = TYPICAL_ELEMENTS if tag == "shape typical" else BIG_ELEMENTS
        if key not in seen and elements(spec, sizes) <= cap:
            seen.add(key)
            keep.append((sizes, tag))
    return keep


def sanitizer_plan(spec: KernelSpec, seed: int) -> list[dict]:
    """The cases re-run under ASan+UBSan: every small shape and layout (large shapes are too slow there)."""
    big = ("shape large", "shape typical", "shape max", "shape 2^16", "threads", "pattern", "scalars")
    return [c for c in plan(spec, seed) if not c["tag"].startswith(big)]


TSAN_THREADS = 4


def tsan_plan(spec: KernelSpec, seed: int) -> list[dict]:
    """The cases re-run under ThreadSanitizer, for a kernel that starts threads. TSan sees a race whenever two
    threads touch the same memory without an order between them, however the run interleaves, so a few cases
    suffice, each at TSAN_THREADS threads: sizes one, tile+1 and a prime, "large", and the big shapes (the
    typical size, the maximum, the 2^16 region: where a kernel may only go parallel above a threshold), each
    big case where the original computes its references quickly enough (as in the plan)."""
    want = ("shape one", "shape tile+1", "shape prime", "shape large", "shape typical", "shape max", "shape 2^16")
    out, seen = [], set()
    for c in plan(spec, seed):
        if c["tag"] in want and c["tag"] not in seen:
            seen.add(c["tag"])
            out.append(dict(c, threads=TSAN_THREADS))
    return out


def cuda_sanitizer_plan(spec: KernelSpec, seed: int) -> list[dict]:
    """The few cases each compute-sanitizer tool runs (it slows kernels down a lot): sizes one, tile+1,
    a prime and one mixed shape, and a misaligned layout; all but the first have tails."""
    out, seen = [], set()
    for c in plan(spec, seed):
        tag = c["tag"]
        key = tag if tag != "shape mixed" else "mixed"
        if key in seen:
            continue
        if tag in ("shape one", "shape tile+1", "shape prime", "shape mixed") or tag.startswith("layout offset"):
            seen.add(key)
            out.append(c)
    return out


def hypothesis_strategy(spec: KernelSpec):
    from hypothesis import strategies as st
    size_st = {}
    for s in spec.sizes:
        large = min(s.max, s.large if s.large is not None else s.max)
        cls = size_classes(s)
        size_st[s.name] = st.one_of(st.sampled_from(cls), st.integers(s.min, max(s.min, min(large, 4 * s.tile + 3))))
    return st.fixed_dictionaries({
        "sizes": st.fixed_dictionaries(size_st),
        "family": st.sampled_from(spec.families),
        "pattern": st.sampled_from(("random", "random") + PATTERNS),
        "layout": st.sampled_from(layouts(spec)),
        "threads": st.sampled_from(thread_counts(spec)),
        "seed": st.integers(0, 2**32 - 1),
        "tag": st.just("hypothesis"),
    })


def shrink_candidates(spec: KernelSpec, case: dict):
    """Smaller variants of a failing case, one size at a time (tried in order, first still-failing wins)."""
    for s in spec.sizes:
        v = case["sizes"][s.name]
        for nv in sorted({s.min, 0, 1, 2, 3, s.tile - 1, s.tile + 1, v // 2, v - 1}):
            if s.min <= nv < v:
                yield dict(case, sizes=dict(case["sizes"], **{s.name: nv}))
    if case["layout"] != "contig":
        yield dict(case, layout="contig")
    if case["family"] != "normal" and "normal" in spec.families:
        yield dict(case, family="normal")
    if case.get("pattern", "random") != "random":
        yield dict(case, pattern="random")
