"""Scaled add in place: y = alpha*x + y (BLAS daxpy), returning the updated y."""
import numpy as np


def axpy_inplace(alpha, x, y):
    y = np.array(y, dtype=np.float64)
    for i in range(len(x)):
        y[i] = alpha * x[i] + y[i]
    return y


def axpy_inplace_numpy(alpha, x, y):
    y += alpha * x
    return y
