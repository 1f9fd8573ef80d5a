"""256-bin histogram of integer codes: counts[b] = how many x[i] == b; codes outside [0, 256) are skipped."""
import numpy as np


def histogram(x):
    counts = np.zeros(256, dtype=np.int64)
    for v in x.tolist():
        if 0 <= v < 256:
            counts[v] += 1
    return counts


def histogram_numpy(x):
    x = x[(x >= 0) & (x < 256)]
    return np.bincount(x, minlength=256)
