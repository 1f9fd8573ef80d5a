"""Speed of a loaded model: prompt processing and decode tokens/s, medians over repeats."""
from __future__ import annotations

import statistics
import time

import numpy as np


def bench_model(model, n_prompt: int = 256, n_gen: int = 64, repeats: int = 5, seed: int = 0) -> dict:
    """Prompt: n_prompt fresh tokens evaluated from position 0 in one call. Decode: n_gen single-token steps after
    that prompt (each step a full forward with the growing cache). Token ids are random: speed does not depend
    on them."""
    if n_prompt + n_gen > model.n_ctx:
        raise ValueError(f"{n_prompt} + {n_gen} tokens exceed the context of {model.n_ctx}")
    rng = np.random.default_rng(seed)
    prompt = rng.integers(0, model.n_vocab, n_prompt).tolist()
    model.eval(prompt[:8])  # warm-up: page in weights, spin up threads
    pp, tg = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.eval(prompt, pos0=0)
        pp.append(n_prompt / (time.perf_counter() - t0))
        toks = rng.integers(0, model.n_vocab, n_gen).tolist()
        t0 = time.perf_counter()
        for i, t in enumerate(toks):
            model.eval([t], pos0=n_prompt + i)
        tg.append(n_gen / (time.perf_counter() - t0))
    return {"pp_tok_s": statistics.median(pp), "tg_tok_s": statistics.median(tg), "pp_all": pp, "tg_all": tg}
