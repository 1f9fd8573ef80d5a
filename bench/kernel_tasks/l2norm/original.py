"""Euclidean norm of a vector."""
import math

import numpy as np


def l2norm(x):
    s = 0.0
    for v in x.tolist():
        s += v * v
    return np.array([math.sqrt(s)])


def l2norm_numpy(x):
    return np.array([np.sqrt(np.dot(x, x))])
