"""relu: max(x, 0), NaN in -> NaN out (as NumPy does)."""
import numpy as np


def relu(x):
    return np.maximum(x, 0.0)
