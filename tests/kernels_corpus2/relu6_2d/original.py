"""relu6 of a 2-D array, any strides in and out: min(max(x, 0), 6); NaN stays NaN."""
import numpy as np


def relu6_2d(x):
    return np.minimum(np.maximum(x, 0.0), 6.0)
