"""Requantizing GGUF files: metadata kept, per-tensor types as llama.cpp chooses them, outputs llama.cpp loads."""
import os

import gguf
import numpy as np
import pytest

import reference_forward as rf
from reference_forward import rel
from ckls.runtime.gguf_write import TYPE_IDS, quantize_matrix
from ckls.runtime.quantize import requantize

TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"]
LLAMA_FTYPE = {"q8_0": "MOSTLY_Q8_0", "q4_0": "MOSTLY_Q4_0", "q4_k": "MOSTLY_Q4_K_M", "q6_k": "MOSTLY_Q6_K",
               "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16"}
# rms error of the reference logits after requantizing an f32 model, relative to the logits' spread: weight
# rounding only (4-bit ~ 1/16 of a block's range, 8-bit ~ 1/256), amplified some 5x by the random layers
WEIGHT_TOL = {"f32": 1e-12, "f16": 5e-3, "bf16": 3e-2, "q8_0": 5e-2, "q6_k": 8e-2, "q4_0": 0.4, "q4_k": 0.35}


def _fields(path):
    r = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}, r


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_metadata_kept_and_types_recorded(models, tmp_path, arch):
    src = models.get(arch, "mini", "f32")
    dst = str(tmp_path / "out.gguf")
    seen = []
    got = requantize(src, dst, "q8_0", progress=lambda i, n, name: seen.append((i, n, name)))
    before, _ = _fields(src)
    after, r = _fields(dst)
    assert after.pop("general.file_type") == 7 and before.pop("general.file_type") == 0
    assert after.pop("general.quantization_version") == gguf.GGML_QUANT_VERSION
    assert after == before  # every other key, tokenizer arrays included, unchanged
    assert [s[0] for s in seen] == list(range(1, len(r.tensors) + 1)) and all(s[1] == len(r.tensors) for s in seen)
    for t in r.tensors:
        want = "f32" if len(t.shape) == 1 else "q8_0"
        assert got[t.name] == want and t.tensor_type == TYPE_IDS[want], t.name
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


@pytest.mark.parametrize("type", ["f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"])
def test_requantized_values_follow_source(models, tmp_path, type):
    """The requantized model's weights are the source's up to the target's rounding, and the quantized bytes
    are exactly what the writer makes from the same floats (one quantizer, deterministic)."""
    src = models.get("qwen2", "mini", "f32")
    dst = str(tmp_path / f"{type}.gguf")
    got = requantize(src, dst, type)
    a, b = rf.load(src), rf.load(dst)
    _, rs = _fields(src)
    _, rd = _fields(dst)
    srcw = {t.name: t for t in rs.tensors}
    for t in rd.tensors:
        if len(t.shape) == 2:
            x = np.asarray(srcw[t.name].data, dtype=np.float32).reshape(a.w[t.name].shape)
            assert np.array_equal(quantize_matrix(x, TYPE_IDS[got[t.name]]).view(np.uint8).ravel(),
                                  np.asarray(t.data).view(np.uint8).ravel()), t.name
            err = np.sqrt(np.mean((b.w[t.name] - a.w[t.name]) ** 2)) / np.std(a.w[t.name])
            assert err < {"f16": 1e-3, "bf16": 5e-3, "q8_0": 1e-2, "q6_k": 2e-2, "q4_0": 0.12, "q4_k": 0.1}[got[t.name]], (t.name, err)
        else:
            assert np.array_equal(b.w[t.name], a.w[t.name])
    tokens = rf.prompt_tokens(a.hp["n_vocab"], 16, seed=5)
    err = rel(rf.forward(b, tokens), rf.forward(a, tokens))
    print(f"{type}: reference logits rel. rms change {err:.2e}")
    assert err < WEIGHT_TOL[type]


def test_requantize_in_place_and_back_to_f32(models, tmp_path):
    """q8_0 -> f32 is exact (the dequantized values), and dst == src is replaced atomically."""
    p = str(tmp_path / "m.gguf")
    requantize(models.get("llama", "tiny", "f32"), p, "q8_0")
    q = rf.load(p)
    requantize(p, p, "f32")
    f = rf.load(p)
    assert f.w.keys() == q.w.keys()
    for k in q.w:
        assert np.array_equal(f.w[k], q.w[k]), k
    assert gguf.GGUFReader(p).fields["general.file_type"].contents() == 0


def test_fallback_for_rows_off_the_block(tmp_path):
    """Rows that are no multiple of 256 (64, 160) fall back from Q4_K to Q4_0 and from Q6_K to Q8_0; rows of
    100 fit no block and become F16, as the module documents."""
    from ckls.runtime.synth import SHAPES, synth_model

    src = str(tmp_path / "odd.gguf")
    synth_model(src, "qwen2", dict(SHAPES["tiny"], n_ff=100), "f32", seed=3)
    got = requantize(src, str(tmp_path / "t.gguf"), "q4_k")
    assert got["blk.0.attn_q.weight"] == "q4_0"
    assert got["blk.1.attn_v.weight"] == "q8_0"  # Q6_K layer of the Q4_K_M mix
    assert got["token_embd.weight"] == "q8_0"  # tied output: Q6_K wanted
    assert got["blk.0.ffn_down.weight"] == got["blk.1.ffn_down.weight"] == "f16"
    assert got["blk.0.ffn_up.weight"] == "q4_0"  # rows of n_embd = 64


def test_bad_type_rejected(models, tmp_path):
    with pytest.raises(ValueError, match="unsupported type"):
        requantize(models.get("llama", "tiny", "f32"), str(tmp_path / "x.gguf"), "q5_1")
    assert not os.listdir(tmp_path)


@pytest.mark.parity
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("type", ["q8_0", "q4_0", "q4_k", "q6_k", "f16", "bf16"])
def test_types_and_output_match_llama_cpp(models, llama_peer, tmp_path, arch, type):
    """Per-tensor types equal those llama.cpp's own quantizer picks for the same ftype, and llama.cpp loads our
    output and computes what the reference computes from it."""
    src = models.get(arch, "mini", "f32")
    ours, theirs = str(tmp_path / "ours.gguf"), str(tmp_path / "theirs.gguf")
    got = requantize(src, ours, type)
    llama_peer.quantize(src, theirs, LLAMA_FTYPE[type])
    lc = {t.name: t.tensor_type.name.lower() for t in gguf.GGUFReader(theirs).tensors}
    assert got == lc
    m = rf.load(ours)
    tokens = rf.prompt_tokens(m.hp["n_vocab"], 16, seed=6)
    err = rel(llama_peer.logits(ours, tokens), rf.forward(m, tokens))
    print(f"{arch} {type}: llama.cpp on our file vs reference rel. rms {err:.2e}")
    assert err < 0.06  # llama.cpp's activation rounding (Q8_0 / Q8_K / bf16) only
