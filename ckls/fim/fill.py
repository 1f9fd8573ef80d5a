"""Random fill-in-the-middle cuts of whole documents (the factory's plain FIM data and the tuner's): two random
character positions, or two line starts, laid out PSM or SPM (layout.py's pieces; the middle is not healed)."""
from __future__ import annotations

import re

import numpy as np

from .tokens import EOT, FIM_MID, FIM_PRE, FIM_SUF


def split_points(text: str, rng: np.random.Generator, line_aligned: bool) -> tuple[int, int]:
    n = len(text)
    if line_aligned:
        starts = [0] + [m.end() for m in re.finditer("\n", text) if m.end() < n] + [n]
        a, b = sorted(rng.choice(len(starts), 2, replace=True))
        return starts[a], starts[b]
    a, b = sorted(rng.integers(0, n + 1, 2))
    return int(a), int(b)


def layout(text: str, rng: np.random.Generator, fim_rate: float, spm_rate: float, line_rate: float):
    """Pieces of one document: plain `text <|endoftext|>` with probability 1 - fim_rate, else a random FIM cut."""
    if rng.random() >= fim_rate or len(text) < 2:
        return [text, (EOT,)]
    a, b = split_points(text, rng, rng.random() < line_rate)
    pre, mid, suf = text[:a], text[a:b], text[b:]
    if rng.random() < spm_rate:
        return [(FIM_SUF,), suf, (FIM_PRE,), pre, (FIM_MID,), ("mid", mid), (EOT, "end")]
    return [(FIM_PRE,), pre, (FIM_SUF,), suf, (FIM_MID,), ("mid", mid), (EOT, "end")]
