"""Scatter-add into an accumulator: acc[idx[i] mod bins] += vals[i] (NumPy's add.at with a floor modulo)."""
import numpy as np


def scatter_add(idx, vals, acc):
    out = acc.copy()
    bins = out.shape[0]
    for t, v in zip(idx.tolist(), vals.tolist()):
        out[t % bins] += v
    return out


def scatter_add_numpy(idx, vals, acc):
    out = acc.copy()
    np.add.at(out, idx % out.shape[0], vals)
    return out
