"""How the index ranks code windows for a query, shared by the SQLite index (index.py) and the in-memory one
(windows.py) so the factory's training prompts retrieve exactly as the server does: the query's rarest terms pick
candidates by the sum of their IDFs, those are scored with BM25 over all the query's terms (FTS5's bm25()
constants and IDF), and overlapping windows of one file and the excluded file are left out."""
from __future__ import annotations

import math

from . import text as text_mod

MAX_QUERY_TERMS = 12  # a query's rarest terms pick candidate windows (by the sum of their IDFs) ...
RERANK = 96           # ... this many, then scored with BM25 over all the query's terms
BM25_K1, BM25_B = 1.2, 0.75  # FTS5's bm25() constants


def query_words(query_text: str, split: bool = False) -> list[str]:
    """The query's distinct terms, nearest the cursor first."""
    return list(dict.fromkeys(reversed(text_mod.terms(query_text, split))))


def rare_terms(words: list[str], elsewhere: dict[str, int], max_terms: int = MAX_QUERY_TERMS) -> list[str]:
    """The max_terms words found in the fewest windows (outside the excluded file); words found nowhere else drop."""
    return sorted((w for w in words if elsewhere[w] > 0), key=elsewhere.__getitem__)[:max_terms]


def bm25(terms: str, words: list[str], df: dict[str, int], n_docs: int, avg_len: float) -> float:
    """BM25 of one window (its space-separated terms) for the query words, as FTS5's bm25() computes it."""
    toks = terms.split()
    tf: dict[str, int] = {}
    for t in toks:
        tf[t] = tf.get(t, 0) + 1
    norm = BM25_K1 * (1 - BM25_B + BM25_B * len(toks) / max(avg_len, 1e-9))
    score = 0.0
    for w in words:
        f = tf.get(w)
        if f:
            score += idf(df.get(w, 1), n_docs) * f * (BM25_K1 + 1) / (f + norm)
    return score


def idf(d: int, n_docs: int) -> float:
    """FTS5's: ln((N - n + 0.5) / (n + 0.5)), at least 1e-6 (a term in over half the windows, or a stale count)."""
    r = (n_docs - d + 0.5) / (d + 0.5)
    return math.log(r) if r > 1.0 else 1e-6


def pick(scored, k: int, exclude: str | None) -> list[tuple[float, str, int, int]]:
    """The k best of (score, path, line, lines) rows: best first (ties by path, line), none of the excluded file,
    at most one of windows of a file that overlap."""
    out: list[tuple[float, str, int, int]] = []
    for row in sorted(scored, key=lambda r: (-r[0], r[1], r[2])):
        _, path, line, _ = row
        if path == exclude or any(o[1] == path and abs(o[2] - line) < text_mod.WINDOW_LINES for o in out):
            continue
        out.append(row)
        if len(out) == k:
            break
    return out
