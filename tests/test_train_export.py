"""GGUF export: keys, shapes and types; the tokenizer survives the trip through GGUF metadata; llama.cpp
computes the same logits as the torch model (RoPE layout, tensor orientation)."""
import sysconfig
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")

from ckls.train import export, tokenizer as tk  # noqa: E402
from ckls.train.model import Config, Llama  # noqa: E402

STRINGS = [
    "def add(a, b):\n    return a + b\n",
    "for (int i = 0; i < n; ++i) { acc += x[i] * 3.14159f; }\n",
    "    x = {'ünïcödé': '日本語', \"emoji\": '🙂'}  # 12345 tabs\t\there\r\n",
    "<|fim_prefix|>import os<|fim_suffix|>\n<|fim_middle|>print(os.sep)<|endoftext|>",
    "   \n\n  trailing   spaces   ",
]


@pytest.fixture(scope="module")
def tok():
    std = Path(sysconfig.get_paths()["stdlib"])
    texts = [p.read_text(encoding="utf-8") for p in sorted((std / "json").glob("*.py"))]
    texts += [p.read_text(encoding="utf-8") for p in sorted((std / "email").glob("*.py"))[:8]]
    return tk.train(texts, vocab_size=600)


def tiny(vocab, tie=True, seed=None):
    torch.manual_seed(seed if seed is not None else np.random.SeedSequence().entropy % 2**31)
    cfg = Config(vocab_size=vocab, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=96, max_seq=64,
                 tie_embeddings=tie)
    m = Llama(cfg)
    with torch.no_grad():  # norms away from 1 so a transposed or missing norm shows up
        for n, p in m.named_parameters():
            if n.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    return m


def read(path):
    r = gguf.GGUFReader(str(path))
    kv = {}
    for f in r.fields.values():
        if f.types and f.types[0] == gguf.GGUFValueType.ARRAY:
            if f.types[-1] == gguf.GGUFValueType.STRING:
                kv[f.name] = [bytes(f.parts[i]).decode() for i in f.data]
            else:
                kv[f.name] = [f.parts[i][0].item() for i in f.data]
        elif f.types and f.types[0] == gguf.GGUFValueType.STRING:
            kv[f.name] = bytes(f.parts[f.data[0]]).decode()
        elif f.types:
            kv[f.name] = f.parts[f.data[0]][0].item()
    return kv, {t.name: t for t in r.tensors}


@pytest.mark.parametrize("ftype", ["f32", "f16", "q8_0"])
@pytest.mark.parametrize("tie", [True, False])
def test_keys_shapes_types(tok, tmp_path, ftype, tie):
    m = tiny(tok.get_vocab_size(), tie)
    vocab = tk.gguf_vocab(tok)
    path = export.write(tmp_path / "m.gguf", m.cfg.to_dict(), export.tensors_from_state(m.state_dict()), vocab,
                        ftype)
    kv, tensors = read(path)
    cfg = m.cfg
    assert kv["general.architecture"] == "llama"
    assert kv["general.file_type"] == export.FILE_TYPES[ftype]
    for k, v in {"context_length": 64, "embedding_length": 64, "block_count": 2, "feed_forward_length": 96,
                 "attention.head_count": 4, "attention.head_count_kv": 2, "rope.dimension_count": 16,
                 "vocab_size": cfg.vocab_size}.items():
        assert kv[f"llama.{k}"] == v, k
    assert kv["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
    assert kv["llama.rope.freq_base"] == pytest.approx(10000.0)
    assert kv["tokenizer.ggml.model"] == "gpt2" and kv["tokenizer.ggml.pre"] == "qwen2"
    ids = vocab["ids"]
    for key, name in [("fim_pre", "<|fim_prefix|>"), ("fim_suf", "<|fim_suffix|>"), ("fim_mid", "<|fim_middle|>"),
                      ("fim_pad", "<|fim_pad|>"), ("fim_rep", "<|repo_name|>"), ("fim_sep", "<|file_sep|>"),
                      ("eos", "<|endoftext|>"), ("bos", "<|endoftext|>"), ("padding", "<|fim_pad|>")]:
        assert kv[f"tokenizer.ggml.{key}_token_id"] == ids[name] == tok.token_to_id(name), key
    assert len(kv["tokenizer.ggml.tokens"]) == cfg.vocab_size
    assert all(" " in mg for mg in kv["tokenizer.ggml.merges"])
    assert kv["tokenizer.ggml.token_type"][:7] == [3] * 7 and set(kv["tokenizer.ggml.token_type"][7:]) == {1}

    expect = {"token_embd.weight": (cfg.dim, cfg.vocab_size), "output_norm.weight": (cfg.dim,)}
    for i in range(2):
        kvd = cfg.n_kv_heads * cfg.head_dim
        expect.update({f"blk.{i}.attn_norm.weight": (64,), f"blk.{i}.ffn_norm.weight": (64,),
                       f"blk.{i}.attn_q.weight": (64, 64), f"blk.{i}.attn_k.weight": (64, kvd),
                       f"blk.{i}.attn_v.weight": (64, kvd), f"blk.{i}.attn_output.weight": (64, 64),
                       f"blk.{i}.ffn_gate.weight": (64, 96), f"blk.{i}.ffn_up.weight": (64, 96),
                       f"blk.{i}.ffn_down.weight": (96, 64)})
    if not tie:
        expect["output.weight"] = (cfg.dim, cfg.vocab_size)
    assert set(tensors) == set(expect)
    state = export.tensors_from_state(m.state_dict())
    for n, ne in expect.items():
        t = tensors[n]
        assert tuple(int(x) for x in t.shape) == ne, n  # ne[0] is the row length
        want = gguf.GGMLQuantizationType.F32 if len(ne) == 1 or ftype == "f32" else \
            {"f16": gguf.GGMLQuantizationType.F16, "q8_0": gguf.GGMLQuantizationType.Q8_0}[ftype]
        assert t.tensor_type == want, n
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(state[n].shape)
        tol = {"f32": 0, "f16": 1e-3, "q8_0": 1e-2}[ftype if len(ne) == 2 else "f32"]
        scale = np.abs(state[n]).max()
        assert np.abs(got - state[n]).max() <= tol * scale + 1e-7, n


def test_tokenizer_round_trip(tok, tmp_path):
    m = tiny(tok.get_vocab_size())
    path = export.write(tmp_path / "m.gguf", m.cfg.to_dict(), export.tensors_from_state(m.state_dict()),
                        tk.gguf_vocab(tok), "f16")
    kv, _ = read(path)
    back = tk.from_gguf_vocab(kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.merges"],
                              kv["tokenizer.ggml.token_type"])
    for s in STRINGS:
        a = tok.encode(s, add_special_tokens=False).ids
        b = back.encode(s, add_special_tokens=False).ids
        assert a == b, s
        assert back.decode(b, skip_special_tokens=False) == s
    # Special-token text inside source is plain text for training data.
    data_tok = tk.for_data(tok)
    ids = data_tok.encode(STRINGS[3], add_special_tokens=False).ids
    assert not set(ids) & set(range(7)) and data_tok.decode(ids) == STRINGS[3]


@pytest.mark.parity
def test_llama_cpp_same_logits(tok, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    m = tiny(tok.get_vocab_size()).eval()
    path = export.write(tmp_path / "m.gguf", m.cfg.to_dict(), export.tensors_from_state(m.state_dict()),
                        tk.gguf_vocab(tok), "f32")
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, n_threads=1, logits_all=True, verbose=False)
    for s in STRINGS[:3]:
        ids = tok.encode(s, add_special_tokens=False).ids[:40]
        assert llm.tokenize(s.encode(), add_bos=False, special=False)[:40] == ids
        llm.reset()
        llm.eval(ids)
        got = np.asarray(llm.scores[:len(ids)])
        with torch.no_grad():
            ref = m(torch.tensor([ids]))[0].numpy()
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        assert err < 2e-3, err


def test_ckls_same_logits(tok, tmp_path):
    """The exported model loads in ckls's runtime and computes the torch model's logits."""
    pytest.importorskip("ckls.native")
    from ckls.runtime import load_model

    m = tiny(tok.get_vocab_size(), tie=False).eval()
    path = export.write(tmp_path / "m.gguf", m.cfg.to_dict(), export.tensors_from_state(m.state_dict()),
                        tk.gguf_vocab(tok), "f32")
    with load_model(path, n_ctx=64, n_threads=1) as cm:
        for s in STRINGS[:3]:
            ids = tok.encode(s, add_special_tokens=False).ids[:40]
            cm.forget()
            got = cm.eval(ids, logits_all=True)
            with torch.no_grad():
                ref = m(torch.tensor([ids]))[0].numpy()
            err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
            assert err < 2e-3, err


def test_export_needs_no_native_build(tmp_path):
    """The GPU factory has no native build: export (through the runtime's GGUF writer) runs without it."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sys
        sys.modules["ckls._native"] = None  # as if never built: importing it raises ImportError
        import numpy as np
        from ckls.train import export
        rng = np.random.default_rng(0)
        d, ff, v = 64, 96, 16
        shapes = {{"token_embd.weight": (v, d), "output_norm.weight": (d,)}}
        for n, sh in [("attn_norm", (d,)), ("attn_q", (d, d)), ("attn_k", (32, d)), ("attn_v", (32, d)),
                      ("attn_output", (d, d)), ("ffn_norm", (d,)), ("ffn_gate", (ff, d)), ("ffn_up", (ff, d)),
                      ("ffn_down", (d, ff))]:
            shapes[f"blk.0.{{n}}.weight"] = sh
        tensors = {{k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}}
        cfg = dict(vocab_size=v, dim=d, n_layers=1, n_heads=4, n_kv_heads=2, ffn_dim=ff, max_seq=64,
                   norm_eps=1e-5, rope_theta=1e4)
        names = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                 "<|repo_name|>", "<|file_sep|>"]
        toks = names + [chr(ord("a") + i) for i in range(v - len(names))]
        vocab = dict(tokens=toks, types=[3] * 7 + [1] * (v - 7), merges=[], pre="qwen2",
                     ids={{t: i for i, t in enumerate(names)}})
        export.write({str(tmp_path / "m.gguf")!r}, cfg, tensors, vocab, "q8_0")
        assert "ckls.native" not in sys.modules, "export loaded the native core"
        print("ok")
    """)
    root = Path(__file__).resolve().parents[1]  # this checkout's ckls, not an installed one
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
    kv, tensors = read(tmp_path / "m.gguf")
    assert kv["general.file_type"] == export.FILE_TYPES["q8_0"]
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0


@pytest.mark.parametrize("ftype", ["f32", "f16", "q8_0"])
def test_same_file_as_runtime_writer(tok, tmp_path, ftype):
    """The factory's export (numpy reference quantizer, its own mapping of config and vocabulary) and the runtime's
    GGUF writer with ckls's native quantizer and a VocabSpec spelled out here agree on every key and tensor."""
    pytest.importorskip("ckls.native")
    from ckls.runtime import gguf_write as gw
    m = tiny(tok.get_vocab_size())
    cfg, vocab = m.cfg.to_dict(), tk.gguf_vocab(tok)
    tensors = export.tensors_from_state(m.state_dict())
    ours = export.write(tmp_path / "ours.gguf", cfg, tensors, vocab, ftype, name="t")
    ids = vocab["ids"]
    spec = gw.VocabSpec(tokens=vocab["tokens"], token_types=vocab["types"], merges=vocab["merges"],
                        pre=vocab["pre"], bos_id=ids["<|endoftext|>"], eos_id=ids["<|endoftext|>"],
                        pad_id=ids["<|fim_pad|>"],
                        fim={"pre": ids["<|fim_prefix|>"], "suf": ids["<|fim_suffix|>"],
                             "mid": ids["<|fim_middle|>"], "pad": ids["<|fim_pad|>"], "rep": ids["<|repo_name|>"],
                             "sep": ids["<|file_sep|>"]})
    hp = {"n_vocab": cfg["vocab_size"], "n_embd": cfg["dim"], "n_layer": cfg["n_layers"], "n_head": cfg["n_heads"],
          "n_head_kv": cfg["n_kv_heads"], "n_ff": cfg["ffn_dim"], "n_ctx_train": cfg["max_seq"],
          "rms_eps": cfg["norm_eps"], "rope_base": cfg["rope_theta"]}
    theirs = tmp_path / "theirs.gguf"
    gw.write_model(theirs, "llama", hp, tensors, spec, default_type=ftype, extra_kv={"general.name": "t"})
    kv_a, t_a = read(ours)
    kv_b, t_b = read(theirs)
    assert kv_a == kv_b
    assert list(t_a) == list(t_b) or set(t_a) == set(t_b)
    for n in t_a:
        assert t_a[n].tensor_type == t_b[n].tensor_type and list(t_a[n].shape) == list(t_b[n].shape), n
        assert np.array_equal(np.asarray(t_a[n].data), np.asarray(t_b[n].data)), n
