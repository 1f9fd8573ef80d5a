"""Inclusive prefix sum (running total)."""
import numpy as np


def prefix_sum(x):
    out = np.empty_like(x)
    s = 0.0
    for i, v in enumerate(x.tolist()):
        s += v
        out[i] = s
    return out


def prefix_sum_numpy(x):
    return np.cumsum(x)
