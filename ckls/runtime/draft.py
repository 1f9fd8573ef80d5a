"""Drafts for speculative decoding from the context itself: prompt-lookup (n-gram) drafting, as llama.cpp's lookup
decoding and Saxena's prompt lookup decoding. Code repeats itself (names, call patterns, the suffix the middle
runs into), so the tokens that followed the most recent earlier occurrence of the last n tokens are a good guess
of what comes next; Model.generate verifies such a guess in one batched forward pass and keeps the prefix the
model itself would have produced.

On a CPU a batched pass is far from free (with the shipped model at ~1,000 positions, 2 threads: 2 tokens cost
~1.4 one-token steps, 4 ~2, 8 ~3; bench/RESULTS.md), so a draft is only as long as the match gives reason to
trust it: half the length of the matched context (the n-gram extended backwards, up to MAX_BACK tokens), at
most the caller's k. That rule was picked offline on the greedy outputs of 180 cursor positions of three unseen
projects (bench/speculative.py), against fixed lengths 1-16 and lengths that grow after accepted drafts.

The search is a few numpy comparisons over the sequence per step (microseconds for a 2,048-token context), no
index to build."""
from __future__ import annotations

from typing import Sequence

import numpy as np

NGRAM_MAX = 3   # longest context looked up (tried first)
NGRAM_MIN = 2   # shortest (a single token's continuation is right too rarely to pay for its pass)
MAX_BACK = 32   # how far a match is extended backwards to measure it


class PromptLookup:
    """The text before the generated tokens and those tokens, and drafts from their n-gram matches."""

    def __init__(self, tokens: Sequence[int], capacity: int = 0, n_max: int = NGRAM_MAX, n_min: int = NGRAM_MIN):
        if not 1 <= n_min <= n_max:
            raise ValueError(f"n-gram sizes {n_min}..{n_max} are not a range of positive sizes")
        self.n_max, self.n_min = n_max, n_min
        self.buf = np.empty(max(capacity, len(tokens)) + 16, dtype=np.int32)
        self.n = len(tokens)
        self.buf[: self.n] = np.asarray(tokens, dtype=np.int32)

    def append(self, tok: int) -> None:
        if self.n == len(self.buf):
            self.buf = np.concatenate([self.buf, np.empty_like(self.buf)])
        self.buf[self.n] = tok
        self.n += 1

    def match(self) -> tuple[int, int]:
        """(where the continuation of the most recent earlier occurrence of the last n tokens starts, how many
        tokens before it agree with the sequence's end), for the longest n in n_max..n_min that has one;
        (-1, 0) when none does."""
        L, b = self.n, self.buf
        for n in range(min(self.n_max, L - 1), self.n_min - 1, -1):
            # starts i of earlier occurrences b[i:i+n] == b[L-n:L] with at least one token after them (i+n < L)
            hit = b[0: L - n] == b[L - n]
            for j in range(1, n):
                hit &= b[j: L - n + j] == b[L - n + j]
            idx = np.flatnonzero(hit)
            if len(idx):
                i = int(idx[-1])
                ml = n
                while ml < MAX_BACK and i + n - ml - 1 >= 0 and b[i + n - ml - 1] == b[L - ml - 1]:
                    ml += 1
                return i + n, ml
        return -1, 0

    def draft(self, k: int) -> list[int]:
        """Up to k tokens that followed the most recent earlier occurrence of the sequence's end: half as many as
        the match is long (a 2- or 3-token match gives one)."""
        if k <= 0:
            return []
        at, ml = self.match()
        if at < 0:
            return []
        return self.buf[at: min(at + min(k, max(1, ml // 2)), self.n)].tolist()


MEMORY_MIN_MATCH = 4  # the repository memory drafts after a match this long (its mixing rule's own threshold)


def memory_draft(memory, context: Sequence[int], k: int, min_match: int = MEMORY_MIN_MATCH) -> list[int]:
    """Up to k tokens the repository memory (ckls.runtime.ngram_memory.NgramMemory) predicts after context, one
    predict call per token: its most frequent next token, while the longest match is at least min_match tokens and
    most of its occurrences agree; at most half as many tokens as the first match is long."""
    ctx = list(context)
    out: list[int] = []
    limit = k
    while len(out) < limit:
        ml, cands = memory.predict(ctx)
        if ml < min_match or not cands:
            break
        top, count = cands[0]
        if 2 * count <= sum(c for _, c in cands):
            break
        if not out:
            limit = min(k, ml // 2)
        out.append(top)
        ctx.append(top)
    return out
