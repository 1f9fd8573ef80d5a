"""How many elements of x are strictly greater than the threshold t (NaN never is)."""
import numpy as np


def count_above(x, t):
    n = 0
    for v in x.tolist():
        if v > t:
            n += 1
    return n


def count_above_numpy(x, t):
    return np.count_nonzero(x > t)
