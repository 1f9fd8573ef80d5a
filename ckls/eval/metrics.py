"""Exact match and edit similarity (1 - Levenshtein distance / length of the longer string). The distance uses
Hyyrö's bit-parallel form of Myers' algorithm on Python integers: one pass over the second string, a handful of
big-integer operations per character whatever the first string's length, so a whole block costs about a
millisecond instead of the quadratic table's hundreds."""
from __future__ import annotations


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character each)."""
    if len(a) < len(b):
        a, b = b, a          # the longer string is the bit pattern: fewer loop steps over the shorter one
    m = len(a)
    if not b:
        return m
    peq: dict[str, int] = {}
    for i, c in enumerate(a):
        peq[c] = peq.get(c, 0) | (1 << i)
    mask = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for c in b:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) ^ pv) | eq) & mask
        ph = (mv | ~(xh | pv)) & mask
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = (ph << 1) | 1    # row 0 of the table grows by one per column: global, not substring, distance
        mh <<= 1
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv & mask
    return score


def edit_similarity(pred: str, target: str) -> float:
    """1 - distance / max(len): 1.0 for equal strings (two empty ones included), 0.0 for nothing in common."""
    n = max(len(pred), len(target))
    if n == 0:
        return 1.0
    return 1.0 - levenshtein(pred, target) / n


def normalize(text: str) -> str:
    """Line ends and trailing whitespace do not count: an editor shows them as nothing."""
    return "\n".join(l.rstrip() for l in text.replace("\r\n", "\n").split("\n")).rstrip()


def exact_match(pred: str, target: str) -> bool:
    return normalize(pred) == normalize(target)
