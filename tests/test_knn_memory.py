"""The hidden-state memory (ckls.runtime.knn_memory) and the native call that feeds it (ckls_model_eval_hidden):
every token's hidden state equals the one the same token gets evaluated last, bad input is an error, the
neighbour search matches a brute-force reference on fresh random keys, and the mix is the interpolation of two
distributions that keeps excluded tokens excluded."""
from __future__ import annotations

import os

import numpy as np
import pytest

from ckls.native import NativeError
from ckls.runtime.knn_memory import HiddenMemory
from ckls.runtime.model import load_model


@pytest.fixture(scope="module")
def tiny(models):
    m = load_model(models.get("llama", "tiny", "q8_0"), n_ctx=400, n_threads=2)
    yield m
    m.close()


def test_eval_hidden_rows_equal_each_token_evaluated_last(tiny, rng):
    ids = rng.integers(0, tiny.n_vocab, size=300).tolist()
    tiny.forget()
    h = tiny.eval_hidden(ids)
    assert h.shape == (300, tiny.hparams["n_embd"]) and np.isfinite(h).all()
    for i in (0, 1, 137, 255, 256, 299):  # both sides of the native batch boundary (256)
        tiny.forget()
        tiny.eval(ids[: i + 1])
        np.testing.assert_array_equal(tiny.last_hidden(), h[i])
    # positions after a cached prefix: the same rows
    tiny.forget()
    tiny.eval(ids[:20])
    np.testing.assert_array_equal(tiny.eval_hidden(ids[20:], pos0=20), h[20:])


def test_eval_hidden_bad_input_is_an_error(tiny):
    tiny.forget()
    with pytest.raises(ValueError):
        tiny.eval_hidden([])
    with pytest.raises(NativeError):
        tiny.eval_hidden([0, tiny.n_vocab])
    with pytest.raises(ValueError):
        tiny.eval_hidden([1] * (tiny.n_ctx + 1))
    with pytest.raises(ValueError):
        tiny.eval_hidden([1, 2], pos0=5)


class _Keys:
    """A stand-in model that hands back given rows as hidden states (the search and mix are what is tested)."""

    def __init__(self, rows):
        self.rows, self.tokenizer = rows, None

    def eval_hidden(self, toks, pos0=0):
        return self.rows[np.asarray(toks)]

    def forget(self):
        pass


def test_neighbours_match_brute_force(rng):
    d, n = 24, 500
    rows = rng.standard_normal((n, d)).astype(np.float32)
    mem = HiddenMemory(_Keys(rows), k=7)
    toks = np.arange(n, dtype=np.int32)
    tgts = rng.integers(0, 50, size=n).astype(np.int32)
    tgts[rng.random(n) < 0.3] = -1  # positions without a target are not stored
    assert mem.add_windows("a", [(toks, tgts)]) == int((tgts >= 0).sum())
    keep = np.flatnonzero(tgts >= 0)
    for _ in range(5):
        q = rng.standard_normal(d).astype(np.float32)
        dist, vals = mem.neighbours(q)
        ref = ((rows[keep] - q) ** 2).sum(1)
        order = np.argsort(ref)[:7]
        np.testing.assert_allclose(dist, ref[order], rtol=1e-4, atol=1e-3)
        np.testing.assert_array_equal(vals, tgts[keep][order])
    assert mem.remove_file("a") and mem.n_tokens == 0
    assert mem.neighbours(q)[1].size == 0


def test_mix_interpolates_and_keeps_exclusions(rng):
    rows = rng.standard_normal((40, 8)).astype(np.float32)
    mem = HiddenMemory(_Keys(rows), k=4, temperature=1.0, lam=0.5)
    mem.add_windows("a", [(np.arange(40), np.full(40, 3, dtype=np.int32))])  # every neighbour says token 3
    logits = rng.standard_normal(10).astype(np.float32)
    logits[3] = -np.inf  # excluded (e.g. by the end guard): the memory may not bring it back
    out = logits.copy()
    assert mem.mix(out, hidden=rows[0]) == 0.0 and np.array_equal(out, logits)
    logits[3] = 0.0
    p = np.exp(logits - logits.max())
    p /= p.sum()
    out = logits.copy()
    assert mem.mix(out, hidden=rows[0]) == 0.5
    want = 0.5 * p
    want[3] += 0.5
    np.testing.assert_allclose(np.exp(out), want, rtol=1e-5)
    mem.lam = 0.0
    out = logits.copy()
    mem.mix(out, hidden=rows[0])
    assert np.array_equal(out, logits)


def test_eval_cli_rejects_a_bad_spec(tmp_path):
    import subprocess
    import sys

    (tmp_path / "a.py").write_text("".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30)))
    for spec, words in (("foo=1", "unknown foo"), ("k", "expected K=V")):
        r = subprocess.run([sys.executable, "-m", "ckls", "eval", "completion", "--repo", str(tmp_path), "--files",
                            "a.py", "--samples", "2", "--hidden-memory", spec], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2 and words in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


MODEL = os.path.join(os.path.dirname(__file__), "..", "ckls", "models", "default.gguf")


@pytest.mark.skipif(not os.path.isfile(MODEL), reason="no shipped model")
def test_middle_windows_target_only_the_middles():
    from ckls.eval.runner import middle_windows

    m = load_model(MODEL, n_ctx=1024, n_threads=1)
    try:
        with open(os.path.join(os.path.dirname(__file__), "..", "ckls", "eval", "runner.py")) as f:
            text = f.read()
        wins = middle_windows(m, "runner.py", text, 6, 600)
        assert 1 <= len(wins) <= 6
        for toks, tgts in wins:
            assert len(toks) == len(tgts) <= 1024
            on = np.flatnonzero(tgts >= 0)
            assert len(on) >= 1 and np.array_equal(on, np.arange(on[0], on[-1] + 1))  # one run
            assert tgts[on[-1]] == m.tokenizer.eos_id  # the middle's closing token
            np.testing.assert_array_equal(toks[on[1:]], tgts[on[:-1]])  # targets are the next tokens
            middle = m.tokenizer.decode([int(t) for t in tgts[on[:-1]]])
            assert middle in text
    finally:
        m.close()
