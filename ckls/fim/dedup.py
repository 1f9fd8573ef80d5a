"""Exact and near-duplicate removal for source files.

Exact: SHA-1 of the text with trailing whitespace and blank lines dropped. Near: MinHash over 5-grams of
code tokens, LSH with 8 bands of 8 rows (pairs above Jaccard ≈ 0.77 become candidates), a candidate pair is a
duplicate when its signatures agree on ≥ 85% of the 64 slots. Of each cluster the first document (in the
caller's order) survives.
"""
from __future__ import annotations

import hashlib
import re
import zlib

import numpy as np

N_PERM = 64
BANDS = 8
ROWS = N_PERM // BANDS
NEAR = 0.85
SHINGLE = 5

_rng = np.random.default_rng(0x636B6C73)  # fixed: signatures must agree across processes and runs
_A = (_rng.integers(1, 2**63, N_PERM, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)  # odd multipliers
_B = _rng.integers(0, 2**63, N_PERM, dtype=np.uint64)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_MASK32 = np.uint64(0xFFFFFFFF)


def exact_key(text: str) -> str:
    lines = [ln.rstrip() for ln in text.splitlines()]
    return hashlib.sha1("\n".join(ln for ln in lines if ln).encode()).hexdigest()


def signature(text: str) -> np.ndarray:
    """MinHash signature (uint32[N_PERM]) of the set of token 5-grams."""
    toks = _TOKEN.findall(text)
    if not toks:
        return np.full(N_PERM, 0xFFFFFFFF, dtype=np.uint32)
    th = np.fromiter((zlib.crc32(t.encode()) for t in toks), dtype=np.uint64, count=len(toks))
    k = min(SHINGLE, len(th))
    n = len(th) - k + 1
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):  # polynomial hash of each window; wraps mod 2^64 on purpose
            h = h * np.uint64(0x100000001B3) + th[j:j + n]
        h = np.unique(h)
        sig = np.empty(N_PERM, dtype=np.uint32)
        for c in range(0, len(h), 8192):  # bounded memory on huge files
            part = ((h[c:c + 8192, None] * _A[None, :] + _B[None, :]) >> np.uint64(32)) & _MASK32
            m = part.min(axis=0).astype(np.uint32)
            sig = m if c == 0 else np.minimum(sig, m)
    return sig


def near_duplicates(sigs: np.ndarray) -> np.ndarray:
    """Given signatures (n, N_PERM) in priority order, return a bool mask of documents to keep."""
    n = len(sigs)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for b in range(BANDS):
        band = np.ascontiguousarray(sigs[:, b * ROWS:(b + 1) * ROWS])
        keys = band.view(np.dtype((np.void, band.dtype.itemsize * ROWS))).ravel()
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        start = 0
        for i in range(1, n + 1):
            if i == n or sk[i] != sk[start]:
                if i - start > 1:
                    group = order[start:i]
                    head = group.min()
                    for g in group:
                        if g != head and (sigs[g] == sigs[head]).mean() >= NEAR:
                            ra, rb = find(int(head)), find(int(g))
                            if ra != rb:
                                parent[max(ra, rb)] = min(ra, rb)
                start = i
    roots = np.array([find(i) for i in range(n)])
    return roots == np.arange(n)
