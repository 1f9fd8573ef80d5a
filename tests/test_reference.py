"""The float64 NumPy reference forward agrees with llama.cpp on f32 models, so it can judge ckls's forward."""
import numpy as np
import pytest

import reference_forward as rf

pytestmark = pytest.mark.parity


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("shape", ["tiny", "mini"])
def test_reference_matches_llama_cpp_f32(models, llama_peer, arch, shape):
    path = models.get(arch, shape, "f32")
    m = rf.load(path)
    tokens = rf.prompt_tokens(m.hp["n_vocab"], 24, seed=1)
    want = rf.forward(m, tokens)
    got = llama_peer.logits(path, tokens)
    assert got.shape == want.shape
    err = np.abs(got - want).max()
    print(f"{arch}/{shape}: max |llama.cpp - reference| = {err:.2e} (logit std {want.std():.2f})")
    assert err < 2e-5 * max(1.0, np.abs(want).max())  # f32 weights, f32 KV cache: only rounding differs
    assert (got.argmax(1) == want.argmax(1)).all()


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_reference_greedy_matches_llama_cpp(models, llama_peer, arch):
    path = models.get(arch, "tiny", "f32")
    m = rf.load(path)
    prompt = rf.prompt_tokens(m.hp["n_vocab"], 12, seed=2)
    assert rf.greedy(m, prompt, 16) == llama_peer.greedy(path, prompt, 16)


def test_reference_kv_cache_and_positions(models):
    """Feeding a prompt in pieces at the right positions gives the same logits as one pass."""
    m = rf.load(models.get("qwen2", "tiny", "f32"))
    tokens = rf.prompt_tokens(m.hp["n_vocab"], 10, seed=3)
    whole = rf.forward(m, tokens)
    cache = {}
    parts = [rf.forward(m, tokens[:4], 0, cache), rf.forward(m, tokens[4:5], 4, cache), rf.forward(m, tokens[5:], 5, cache)]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-10)
