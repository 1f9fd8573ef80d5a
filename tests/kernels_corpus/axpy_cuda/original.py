"""axpy: out = a*x + y, as someone first wrote it (a Python loop), and the vectorised NumPy version."""
import numpy as np


def axpy(a, x, y):
    out = np.empty_like(y)
    for i in range(len(x)):
        out[i] = a * x[i] + y[i]
    return out


def axpy_numpy(a, x, y):
    return a * x + y
