"""Histogram of byte values: counts[v] = number of elements of x equal to v, for v in 0..255."""
import numpy as np


def histogram(x):
    counts = np.zeros(256, dtype=np.int64)
    for v in x.tolist():
        counts[v] += 1
    return counts


def histogram_numpy(x):
    return np.bincount(x, minlength=256).astype(np.int32)
