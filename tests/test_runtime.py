"""The runtime's contract: consistent logits however tokens are batched, prefix reuse, cancellation, generation,
threads, and clear errors."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ckls.native import NativeError
from ckls.runtime import CancelFlag, Cancelled, ModelError, load_model
from ckls.runtime.synth import synth_model


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def model_path(request, tmp_path_factory):
    p = tmp_path_factory.mktemp("rt") / f"{request.param}.gguf"
    synth_model(p, arch=request.param, shape="tiny", type="q8_0", seed=3)
    return p


@pytest.fixture(scope="module")
def mini_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("rt") / "mini.gguf"
    synth_model(p, arch="qwen2", shape="mini", type="q4_k", seed=4)
    return p


def test_batched_equals_incremental(model_path):
    with load_model(model_path, n_ctx=512, n_threads=2) as m:
        toks = list(np.random.default_rng(0).integers(0, m.n_vocab, 300))  # > one internal batch of 256
        all_logits = m.eval(toks, logits_all=True)
        assert all_logits.shape == (300, m.n_vocab)
        step = [m.eval([t], pos0=i) for i, t in enumerate(toks[:40])]
        np.testing.assert_allclose(np.array(step), all_logits[:40], rtol=1e-3, atol=1e-3)
        last = m.eval(toks, pos0=0)
        np.testing.assert_allclose(last, all_logits[-1], rtol=1e-4, atol=1e-4)


def test_prefix_reuse_evaluates_only_new_tokens(model_path):
    with load_model(model_path, n_ctx=256, n_threads=2) as m:
        a = [5, 17, 99, 3, 250, 8]
        b = a + [41, 42, 43]
        fresh = m.eval(b, pos0=0)
        m.eval([1, 2, 3], pos0=0)
        m.logits_for(a)
        assert m.cached_tokens == a
        got = m.logits_for(b)
        assert m.cached_tokens == b
        np.testing.assert_allclose(got, fresh, rtol=1e-4, atol=1e-4)
        # a diverging edit in the middle keeps only the common prefix
        c = a[:3] + [7, 7]
        np.testing.assert_allclose(m.logits_for(c), m.eval(c, pos0=0), rtol=1e-4, atol=1e-4)
        # the same prompt again re-evaluates only its last token
        assert m.logits_for(c).shape == (m.n_vocab,)


def test_threads_give_identical_logits(mini_path):
    toks = list(range(10, 70))
    outs = []
    for n in (1, 2):
        with load_model(mini_path, n_ctx=128, n_threads=n) as m:
            outs.append(m.eval(toks, logits_all=True))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_cancel_before_and_during(mini_path):
    with load_model(mini_path, n_ctx=2048, n_threads=2) as m:
        flag = CancelFlag()
        flag.set()
        with pytest.raises(Cancelled):
            m.eval(list(range(100)), cancel=flag)
        assert m.cached_tokens == []
        # cancel from another thread while a long prompt is being evaluated: at a random moment within the first
        # half of what an uncancelled eval takes (measured to place the moment; nothing is asserted on time). A try
        # whose eval still finished first is whole and cached, and is tried again.
        flag.clear()
        toks = [int(t) for t in np.random.default_rng(1).integers(0, m.n_vocab, 2000)]
        t0 = time.perf_counter()
        m.eval(toks)
        span = time.perf_counter() - t0
        rng = np.random.default_rng()
        for _ in range(50):
            flag.clear()
            timer = threading.Timer(float(rng.uniform(0.0, 0.5)) * span, flag.set)
            timer.start()
            try:
                m.eval(toks, cancel=flag)
            except Cancelled:
                break
            finally:
                timer.join()
            assert m.cached_tokens == toks
        else:
            pytest.fail("the flag never landed inside an eval in 50 tries")
        assert m.cached_tokens == []
        # the model is still usable afterwards
        flag.clear()
        assert np.isfinite(m.eval(toks[:20], cancel=flag)).all()


def test_generate_greedy_and_seeded(model_path):
    with load_model(model_path, n_ctx=256, n_threads=2) as m:
        prompt = [11, 12, 13]
        got = list(m.generate(prompt, 10, stop_ids=[]))
        seq, want = list(prompt), []
        for _ in range(10):
            t = int(np.argmax(m.eval(seq, pos0=0)))
            want.append(t)
            seq.append(t)
        assert got == want
        s1 = list(m.generate(prompt, 12, temperature=0.9, top_k=40, top_p=0.95, seed=5, stop_ids=[]))
        s2 = list(m.generate(prompt, 12, temperature=0.9, top_k=40, top_p=0.95, seed=5, stop_ids=[]))
        assert s1 == s2
        flag = CancelFlag()
        gen = m.generate(prompt, 50, cancel=flag, stop_ids=[])
        next(gen)
        flag.set()
        with pytest.raises(Cancelled):
            list(gen)


def test_bad_calls_raise_clear_errors(model_path, tmp_path):
    with load_model(model_path, n_ctx=64, n_threads=1) as m:
        with pytest.raises(NativeError, match="outside vocabulary"):
            m.eval([m.n_vocab + 5])
        with pytest.raises(ValueError, match="context"):
            m.eval(list(range(65)))
        with pytest.raises(ValueError):
            m.eval([])
    with pytest.raises(ModelError, match="cannot open"):
        load_model(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    with pytest.raises(ModelError):
        load_model(junk)
    notgguf = tmp_path / "x.gguf"
    notgguf.write_bytes(b"hello world, not a model at all" * 4)
    with pytest.raises(ModelError, match="magic"):
        load_model(notgguf)


def test_ckls_isa_env_pins_and_rejects():
    import os
    import subprocess
    import sys
    code = "from ckls.native import ffi, lib; print(ffi.string(lib.ckls_isa_name(lib.ckls_isa_active())).decode())"
    env = dict(os.environ, CKLS_ISA="scalar")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "scalar", out.stderr
    env["CKLS_ISA"] = "pdp11"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "not one of scalar" in out.stderr


def test_truncate_and_forget_drop_cached_positions(model_path):
    """The public KV-cache API (llama.cpp's llama_memory_seq_rm): truncate(n) keeps positions < n, forget() all;
    evaluation then continues from what is kept, with the same logits as before."""
    with load_model(model_path, n_ctx=64, n_threads=1) as m:
        full = m.logits_for([5, 6, 7, 8, 9])
        m.truncate(3)
        assert m.cached_tokens == [5, 6, 7]
        with pytest.raises(ValueError):
            m.eval([9], pos0=4)  # position 3 is gone
        assert np.array_equal(m.eval([8, 9], pos0=3), full)
        m.truncate(10)
        assert m.cached_tokens == [5, 6, 7, 8, 9]
        m.forget()
        assert m.cached_tokens == []
        with pytest.raises(ValueError):
            m.truncate(-1)
