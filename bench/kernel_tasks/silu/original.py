"""SiLU (swish) activation, elementwise: x * sigmoid(x)."""
import numpy as np


def silu(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = x[i] / (1.0 + np.exp(-x[i]))
    return out


def silu_numpy(x):
    return x / (1.0 + np.exp(-x))
