"""Inclusive prefix sum of non-negative counts (int64 in, int64 out)."""
import numpy as np


def prefix_sum(x):
    out = np.empty(len(x), dtype=np.int64)
    s = 0
    for i, v in enumerate(x.tolist()):
        s += v
        out[i] = s
    return out


def prefix_sum_numpy(x):
    return np.cumsum(x)
