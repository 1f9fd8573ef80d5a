"""Dot product of two int32 vectors of non-negative samples (0..300), exact in int64."""
import numpy as np


def dot_i32(x, y):
    s = 0
    for a, b in zip(x.tolist(), y.tolist()):
        s += a * b
    return s


def dot_i32_numpy(x, y):
    return np.dot(x.astype(np.int64), y.astype(np.int64))
