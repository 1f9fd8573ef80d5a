"""Row-wise log-softmax, the numerically stable way."""
import numpy as np


def log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
