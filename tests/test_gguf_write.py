"""The GGUF writer and the synthetic models: valid vocabularies, exact shapes and types, deterministic files."""
import hashlib

import gguf
import numpy as np
import pytest

from ckls.runtime.gguf_write import TYPE_IDS, VocabSpec, storage_type, write_model
from ckls.runtime.synth import SHAPES, SPECIALS, bytes_to_unicode, shape_hparams, synth_model, synth_vocab, synth_weights


@pytest.mark.parametrize("n_vocab", [263, 1000, 16384, 151936])
def test_synth_vocab_is_valid_bpe(n_vocab):
    v = synth_vocab(n_vocab, "qwen2")
    assert len(v.tokens) == len(v.token_types) == n_vocab
    assert len(set(v.tokens)) == n_vocab
    assert v.tokens[:256] == [bytes_to_unicode()[b] for b in range(256)]
    index = {t: i for i, t in enumerate(v.tokens)}
    for rank, m in enumerate(v.merges):
        a, b = m.split(" ")
        # both halves exist before the merge that forms them, and the result is a token
        assert index[a] < 256 + rank and index[b] < 256 + rank and (a + b) in index
    assert v.tokens[-len(SPECIALS):] == SPECIALS and set(v.token_types[-len(SPECIALS):]) == {3}
    assert set(v.token_types[:-len(SPECIALS)]) == {1}
    assert v.tokens[v.eos_id] == "<|endoftext|>"
    assert {k: v.tokens[i] for k, i in v.fim.items()} == {
        "pre": "<|fim_prefix|>", "mid": "<|fim_middle|>", "suf": "<|fim_suffix|>", "pad": "<|fim_pad|>",
        "rep": "<|repo_name|>", "sep": "<|file_sep|>"}


def test_synth_vocab_too_small():
    with pytest.raises(ValueError):
        synth_vocab(100)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_written_file_has_what_was_asked(tmp_path, arch):
    p = tmp_path / "m.gguf"
    hp = synth_model(p, arch, "mini", "q4_k", seed=3)
    r = gguf.GGUFReader(p)
    f = {k: v.contents() for k, v in r.fields.items()}
    assert f["general.architecture"] == arch
    assert f[f"{arch}.embedding_length"] == hp["n_embd"] == 256
    assert f[f"{arch}.attention.head_count_kv"] == 2 and f[f"{arch}.rope.dimension_count"] == 64
    assert abs(f[f"{arch}.attention.layer_norm_rms_epsilon"] - 1e-6) < 1e-12
    assert f["tokenizer.ggml.model"] == "gpt2" and f["tokenizer.ggml.pre"] == ("qwen2" if arch == "qwen2" else "gpt-2")
    assert len(f["tokenizer.ggml.tokens"]) == hp["n_vocab"]
    assert f["tokenizer.ggml.fim_mid_token_id"] == f["tokenizer.ggml.tokens"].index("<|fim_middle|>")
    ts = {t.name: t for t in r.tensors}
    assert ("output.weight" in ts) == (arch == "llama")  # qwen2 synth models tie the output
    assert ("blk.0.attn_q.bias" in ts) == (arch == "qwen2")
    for name, t in ts.items():
        assert t.tensor_type == (TYPE_IDS["q4_k"] if len(t.shape) == 2 else 0), name
    assert list(ts["blk.1.ffn_down.weight"].shape) == [512, 256]  # GGUF order: ne0 = row length (n_ff)
    assert list(ts["token_embd.weight"].shape) == [256, 1000]


def test_same_arguments_same_bytes(tmp_path):
    digests = set()
    for i in range(2):
        synth_model(tmp_path / f"{i}.gguf", "qwen2", "tiny", "q8_0", seed=5)
        digests.add(hashlib.sha256((tmp_path / f"{i}.gguf").read_bytes()).hexdigest())
    assert len(digests) == 1
    synth_model(tmp_path / "other.gguf", "qwen2", "tiny", "q8_0", seed=6)
    assert hashlib.sha256((tmp_path / "other.gguf").read_bytes()).hexdigest() not in digests


def test_weight_values_round_trip(tmp_path):
    hp = shape_hparams("tiny")
    w = synth_weights("llama", hp, 1, tied=False)
    p = tmp_path / "m.gguf"
    got = write_model(p, "llama", hp, w, synth_vocab(hp["n_vocab"], "gpt-2"), tensor_types={"output.weight": "f16"},
                      default_type="bf16")
    assert got["output.weight"] == "f16" and got["blk.0.attn_q.weight"] == "bf16" and got["output_norm.weight"] == "f32"
    r = {t.name: t for t in gguf.GGUFReader(p).tensors}
    out = gguf.quants.dequantize(r["output.weight"].data, r["output.weight"].tensor_type)
    np.testing.assert_array_equal(out, w["output.weight"].astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(r["blk.0.attn_norm.weight"].data), w["blk.0.attn_norm.weight"])
    q = gguf.quants.dequantize(r["blk.0.attn_q.weight"].data, r["blk.0.attn_q.weight"].tensor_type)
    assert np.abs(q - w["blk.0.attn_q.weight"]).max() <= np.abs(w["blk.0.attn_q.weight"]).max() * 2**-8


def test_fallback_rule():
    q4k, q6k, q4_0, q8_0, f16 = (TYPE_IDS[k] for k in ("q4_k", "q6_k", "q4_0", "q8_0", "f16"))
    assert storage_type(q4k, 512) == q4k and storage_type(q4k, 896) == q4_0 and storage_type(q4k, 100) == f16
    assert storage_type(q6k, 896) == q8_0 and storage_type(q8_0, 48) == f16 and storage_type(q4_0, 64) == q4_0


def test_writer_rejects_bad_input(tmp_path):
    hp = shape_hparams("tiny")
    vocab = synth_vocab(hp["n_vocab"])
    w = synth_weights("qwen2", hp, 0, tied=True)
    p = tmp_path / "x.gguf"
    with pytest.raises(ValueError, match="architecture"):
        write_model(p, "gpt2", hp, w, vocab)
    with pytest.raises(ValueError, match="shape"):
        write_model(p, "qwen2", hp, dict(w, **{"blk.0.attn_k.weight": np.zeros((64, 64), np.float32)}), vocab)
    with pytest.raises(ValueError, match="missing"):
        write_model(p, "qwen2", hp, {k: v for k, v in w.items() if k != "blk.1.ffn_up.weight"}, vocab)
    with pytest.raises(ValueError, match="unexpected"):
        write_model(p, "qwen2", hp, dict(w, extra=np.zeros(3, np.float32)), vocab)
    with pytest.raises(ValueError, match="vocab"):
        write_model(p, "qwen2", hp, w, synth_vocab(500))
    with pytest.raises(ValueError, match="unsupported tensor type"):
        write_model(p, "qwen2", hp, w, vocab, default_type="q5_0")
    with pytest.raises(ValueError, match="lack"):
        write_model(p, "qwen2", {k: v for k, v in hp.items() if k != "rope_base"}, w, vocab)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_shapes_are_what_they_claim():
    n = {}
    for name in ("small", "qwen05b"):
        hp = shape_hparams(name)
        d, hd = hp["n_embd"], hp["n_embd"] // hp["n_head"]
        per_layer = d * hd * (hp["n_head"] * 2 + hp["n_head_kv"] * 2) + 3 * d * hp["n_ff"]
        n[name] = hp["n_vocab"] * d + hp["n_layer"] * per_layer
    assert 25e6 < n["small"] < 40e6
    assert 480e6 < n["qwen05b"] < 500e6  # Qwen2.5-0.5B: 494M with the tied embedding
    assert SHAPES["qwen05b"]["n_head"] == 14 and SHAPES["qwen05b"]["n_head_kv"] == 2


@pytest.mark.parity
@pytest.mark.parametrize("pre", ["qwen2", "gpt-2"])
def test_synth_vocab_tokenizes_alike_in_llama_cpp_and_ckls(models, llama_peer, pre):
    """llama.cpp accepts the synthetic vocabulary and splits code into the same tokens as ckls's tokenizer."""
    from ckls.runtime import load_model

    path = models.get("qwen2" if pre == "qwen2" else "llama", "tiny", "f32")
    llm = llama_peer.model(path)
    m = load_model(path, n_ctx=64, n_threads=1)
    try:
        for text in ["def foo(x):\n    return x + 1\n", "for (int i = 0; i < n; i++) { s += a[i]; }", "héllo 世界 42"]:
            theirs = llm.tokenize(text.encode(), add_bos=False, special=False)
            ours = m.tokenizer.encode(text)
            assert list(ours) == list(theirs), text
            assert llm.detokenize(theirs).decode() == text
    finally:
        m.close()
