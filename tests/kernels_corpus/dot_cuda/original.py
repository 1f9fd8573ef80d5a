"""Dot product in double precision, returned as a 0-d output; and the vectorised NumPy version."""
import numpy as np


def dot(x, y):
    s = 0.0
    for a, b in zip(x, y):
        s += a * b
    return s


def dot_numpy(x, y):
    return np.dot(x, y)
