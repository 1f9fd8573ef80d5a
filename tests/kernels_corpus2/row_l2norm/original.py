"""Each row of a 2-D array divided by its Euclidean norm (a zero row gives NaN, 0/0, as NumPy does)."""
import numpy as np


def row_l2norm(x):
    return x / np.sqrt((x * x).sum(axis=1, keepdims=True))
