"""softplus(x) = log(1 + exp(x)), computed without overflow (np.logaddexp(0, x))."""
import numpy as np


def softplus(x):
    return np.logaddexp(0.0, x)
