"""Index of the largest element of each row; ties go to the first, a NaN wins (the first NaN), as np.argmax."""
import numpy as np


def argmax_rows(x):
    return np.argmax(x, axis=1).astype(np.int64)
