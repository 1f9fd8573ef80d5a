"""Small dense matrix product C = A @ B, as a triple loop."""
import numpy as np


def matmul(a, b):
    m, k = a.shape
    n = b.shape[1]
    c = np.zeros((m, n))
    for i in range(m):
        for j in range(n):
            s = 0.0
            for p in range(k):
                s += a[i, p] * b[p, j]
            c[i, j] = s
    return c


def matmul_numpy(a, b):
    return a @ b
