"""Valid 1-D convolution (correlation, as in neural networks): out[i] = sum_t x[i + t] * w[t]."""
import numpy as np


def conv1d(x, w):
    k = w.shape[0]
    n = x.shape[0] - k + 1
    out = np.zeros(n)
    for i in range(n):
        s = 0.0
        for t in range(k):
            s += x[i + t] * w[t]
        out[i] = s
    return out


def conv1d_numpy(x, w):
    return np.correlate(x, w, mode="valid")
