"""Matrix product c = a @ b, as loops over the output with a dot product each, and NumPy's matmul."""
import numpy as np


def matmul(a, b):
    m, n = a.shape[0], b.shape[1]
    c = np.zeros((m, n))
    for i in range(m):
        for j in range(n):
            c[i, j] = np.dot(a[i, :], b[:, j])
    return c


def matmul_numpy(a, b):
    return a @ b
