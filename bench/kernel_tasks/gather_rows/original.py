"""Embedding-style gather: out[i] = table[idx[i] mod vocab] (NumPy's take with mode="wrap")."""
import numpy as np


def gather_rows(table, idx):
    vocab = table.shape[0]
    out = np.empty((idx.shape[0], table.shape[1]))
    for i, t in enumerate(idx.tolist()):
        out[i] = table[t % vocab]
    return out


def gather_rows_numpy(table, idx):
    return np.take(table, idx, axis=0, mode="wrap")
