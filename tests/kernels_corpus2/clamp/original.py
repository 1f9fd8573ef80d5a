"""clamp: every element of x limited to [lo, hi] (np.clip's order: max with lo first, then min with hi)."""
import numpy as np


def clamp(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)
