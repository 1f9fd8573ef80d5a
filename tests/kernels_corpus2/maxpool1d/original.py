"""1-D max pooling with stride 1 and window k: out[i] = max(x[i : i + k]) (the window is cut at the end of
x); a NaN in the window gives NaN."""
import numpy as np


def maxpool1d(x, k):
    n = len(x)
    out = np.empty(n)
    for i in range(n):
        out[i] = np.max(x[i:i + k])
    return out


def maxpool1d_numpy(x, k):
    xp = np.concatenate([x, np.full(k - 1, -np.inf, x.dtype)])
    return np.lib.stride_tricks.sliding_window_view(xp, k).max(axis=1)
