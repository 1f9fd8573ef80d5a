"""Row sums of a matrix (any strides)."""
import numpy as np


def row_sums(x):
    out = np.zeros(x.shape[0])
    for r, row in enumerate(x):
        s = 0.0
        for v in row.tolist():
            s += v
        out[r] = s
    return out


def row_sums_numpy(x):
    return x.sum(axis=1)
