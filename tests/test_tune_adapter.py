"""LoRA adapter GGUF files: written by ckls.tune, loaded by llama.cpp (llama-cpp-python's lora_path), whose
logits must match the float64 reference forward with the same adapter; round trip through our reader; bad files
and wrong base models refused."""
import functools

import numpy as np
import pytest

import adapter_fixtures
import reference_forward as rf
from reference_forward import rel
from ckls.runtime.gguf_file import ModelError
from ckls.runtime.adapter_gguf import LoraWeights, check_against_base, read_adapter, write_adapter
from ckls.runtime.lora import TARGET_ORDER as TARGETS

# a tuner's adapter: it names the step it was saved at
random_adapter = functools.partial(adapter_fixtures.random_adapter, meta={"ckls.tune.step": 7})


def test_round_trip_and_metadata(models, tmp_path):
    base = models.get("qwen2", "tiny", "f32")
    w = random_adapter(base, rank=4, alpha=8.0, seed=1, targets=("attn_q", "ffn_down"))
    path = tmp_path / "a.gguf"
    write_adapter(path, w)
    got = read_adapter(path)
    assert got.arch == "qwen2" and got.alpha == 8.0 and got.rank == 4 and got.scale == 2.0
    assert got.meta == {"ckls.tune.step": 7}
    assert set(got.pairs) == set(w.pairs)
    for k, (a, b) in w.pairs.items():
        assert np.array_equal(got.pairs[k][0], a) and np.array_equal(got.pairs[k][1], b)
    check_against_base(got, base)
    # the gguf package (llama.cpp's own Python reader) sees the keys and ne as llama.cpp expects them
    import gguf

    r = gguf.GGUFReader(str(path))
    assert r.fields["general.type"].contents() == "adapter"
    assert r.fields["adapter.type"].contents() == "lora"
    t = {x.name: x for x in r.tensors}
    a, b = t["blk.0.attn_q.weight.lora_a"], t["blk.0.attn_q.weight.lora_b"]
    assert list(a.shape) == [64, 4] and list(b.shape) == [4, 64]  # ne: [n_in, r] and [r, n_out]
    assert a.tensor_type == gguf.GGMLQuantizationType.F32


def test_wrong_base_and_bad_files(models, tmp_path):
    base = models.get("qwen2", "tiny", "f32")
    other = models.get("llama", "tiny", "f32")
    w = random_adapter(base, rank=2, alpha=4.0, seed=2, targets=("attn_q",))
    with pytest.raises(ModelError, match="for 'qwen2'"):
        check_against_base(w, other)
    bad = LoraWeights("qwen2", 4.0, {"blk.0.attn_q.weight": (np.zeros((2, 65), np.float32),
                                                              np.zeros((64, 2), np.float32))})
    with pytest.raises(ModelError, match="do not fit"):
        check_against_base(bad, base)
    with pytest.raises(ValueError, match="rank"):
        write_adapter(tmp_path / "x.gguf", LoraWeights("qwen2", 1.0, {"blk.0.attn_q.weight": (
            np.zeros((2, 64), np.float32), np.zeros((64, 3), np.float32))}))
    with pytest.raises(ModelError, match="not 'adapter'"):
        read_adapter(base)
    assert not list(tmp_path.glob(".ckls-*"))  # a failed write leaves no temporary file behind


@pytest.mark.parity
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_llama_cpp_applies_our_adapter_like_the_reference(models, llama_peer, tmp_path, arch):
    """llama.cpp with our adapter == float64 reference with it, and the adapter moves the logits far more than
    the tolerance (so a dropped or transposed adapter cannot pass)."""
    base = models.get(arch, "tiny", "f32")
    w = random_adapter(base, rank=4, alpha=8.0, seed=3)
    path = str(tmp_path / "lora.gguf")
    write_adapter(path, w)
    tokens = rf.prompt_tokens(1000, 20, seed=5)
    ref = rf.load(base)
    want = rf.forward(ref, tokens, lora=rf.load_lora(path))
    plain = rf.forward(ref, tokens)
    got = llama_peer.lora_logits(base, path, tokens)
    err, moved = rel(got, want), rel(plain, want)
    print(f"{arch}: llama.cpp+LoRA vs reference+LoRA rel {err:.2e}; the adapter moves logits by {moved:.2e}")
    assert err < 2e-5
    assert moved > 0.05
    try:
        import ckls.runtime.lora  # noqa: F401
    except ImportError:
        return  # this build serves no adapters yet; the file format is what was checked
    from ckls.runtime import load_model
    from ckls.runtime.lora import LoraAdapter

    with load_model(base, n_ctx=64, n_threads=1) as m:
        m.set_adapter(LoraAdapter.from_gguf(m, path))
        ours = m.eval(tokens, logits_all=True)
    e_ours = rel(ours, got)
    print(f"{arch}: ckls+LoRA vs llama.cpp+LoRA rel {e_ours:.2e}")
    assert e_ours < 2e-5


def test_target_order_is_the_c_librarys():
    """The one order (ckls.h): index i is flag 1 << i; Python reads names and flags from the library."""
    from ckls.native import ffi, lib
    from ckls.runtime.lora import TARGETS as FLAGS

    assert TARGETS == ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    assert [FLAGS[t] for t in TARGETS] == [lib.CKLS_LORA_Q, lib.CKLS_LORA_K, lib.CKLS_LORA_V, lib.CKLS_LORA_O,
                                           lib.CKLS_LORA_GATE, lib.CKLS_LORA_UP, lib.CKLS_LORA_DOWN]
    assert lib.ckls_lora_target_name(-1) == ffi.NULL and lib.ckls_lora_target_name(len(TARGETS)) == ffi.NULL


def test_runtime_adapter_from_and_to_the_file(models, tmp_path):
    """LoraAdapter.from_gguf holds the file's A/B and alpha; to_weights gives them back; a file for another
    architecture is refused; serving it changes the logits and drops the cached prefix."""
    from ckls.runtime import load_model
    from ckls.runtime.lora import LoraAdapter

    base = models.get("qwen2", "tiny", "f32")
    w = random_adapter(base, rank=4, alpha=8.0, seed=3, targets=("ffn_up", "attn_k"))
    path = tmp_path / "a.gguf"
    write_adapter(path, w)
    with load_model(base, n_ctx=64, n_threads=1) as m:
        plain = m.logits_for([1, 2, 3, 4])
        assert m.cached_tokens == [1, 2, 3, 4]
        ad = LoraAdapter.from_gguf(m, path)
        assert ad.targets == ("attn_k", "ffn_up") and ad.rank == 4 and ad.alpha == 8.0
        back = ad.to_weights("qwen2", {"ckls.tune.step": 7})
        assert set(back.pairs) == set(w.pairs) and back.meta == w.meta
        for name, (a, b) in w.pairs.items():
            assert np.array_equal(back.pairs[name][0], a) and np.array_equal(back.pairs[name][1], b)
        m.set_adapter(ad)
        assert m.cached_tokens == []
        assert not np.allclose(m.logits_for([1, 2, 3, 4]), plain)
        other = LoraWeights("llama", w.alpha, w.pairs)
        with pytest.raises(ValueError, match="for 'llama'"):
            LoraAdapter.from_weights(m, other)


def test_integer_metadata_keys_take_the_one_typing_rule(models, tmp_path):
    """One GGUF writer: integers that fit are uint32 / int32 (as llama.cpp reads its keys), wider ones 64-bit."""
    import gguf

    base = models.get("qwen2", "tiny", "f32")
    w = random_adapter(base, rank=2, alpha=4.0, seed=5, targets=("attn_q",), layers=[0])
    w.meta = {"ckls.a": 7, "ckls.b": -3, "ckls.c": 1 << 40, "ckls.d": -(1 << 40), "ckls.e": True, "ckls.f": 0.5,
              "ckls.g": "x"}
    path = tmp_path / "a.gguf"
    write_adapter(path, w)
    fields = gguf.GGUFReader(str(path)).fields
    T = gguf.GGUFValueType
    assert [fields[k].types[0] for k in sorted(w.meta)] == [T.UINT32, T.INT32, T.UINT64, T.INT64, T.BOOL,
                                                          T.FLOAT32, T.STRING]
    assert read_adapter(path).meta == w.meta
