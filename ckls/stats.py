"""The one paired statistic ckls decides by: the bootstrap interval of a mean of paired differences (the eval's
comparisons, and the tuner's gate on serving an adapter)."""
from __future__ import annotations

import numpy as np


def bootstrap(diff, n: int = 10000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval (default 95%) of the mean of paired differences; (0, 0) for none."""
    d = np.asarray(diff, dtype=np.float64)
    if d.size == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))
