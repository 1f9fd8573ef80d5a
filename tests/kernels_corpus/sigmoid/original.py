"""sigmoid: 1 / (1 + exp(-x))."""
import math

import numpy as np


def sigmoid(x):
    out = np.empty_like(x)
    for i, v in enumerate(x):
        out[i] = 1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0
    return out


def sigmoid_numpy(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))
