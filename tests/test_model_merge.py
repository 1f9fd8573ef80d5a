"""`ckls model merge`: the merged model computes what the base model served with the adapter(s) attached
computes — in ckls's runtime and in llama.cpp (`--lora`) — within the requantization's tolerance; several weighted
adapters add up; every other tensor and key is copied; wrong inputs give one line and no file.

Tolerances are on the rms logit difference relative to the logits' spread ("rel", as test_parity_llamacpp).
f32: rounding only (the merged W + s.B.A is formed in float64, rounded once to f32): measured < 1e-6, bound 2e-5.
q8_0: the merged matrix is quantized once more, and its product with the (Q8_0-rounded) activations replaces the
adapter's f32 product; on these random layers, which amplify rounding, that measures rel 0.03-0.04 against serving
the q8_0 base with the adapter — the size of quantizing the model at all (q8_0 vs f32 base: 0.024-0.027). Bound:
0.06, and at most twice the base's own q8_0-vs-f32 difference. Every test also requires the adapter to move the
logits far more than the bound (rel > 0.1; these adapters move them by ~1.3), so a dropped, transposed or
mis-scaled product cannot pass.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import reference_forward as rf
from adapter_fixtures import random_adapter
from reference_forward import rel
from ckls.runtime.adapter_gguf import LoraWeights, write_adapter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = {"f32": 2e-5, "q8_0": 0.06}
MOVED = 0.1  # the adapter must move the logits at least this much (rel)


def concatenated(adapters) -> LoraWeights:
    """One adapter equal to the weighted sum of several (same targets): A stacked, B side by side and scaled,
    alpha = the total rank (scale 1). The runtime serves one adapter at a time; this is how it serves a sum."""
    first = adapters[0][0]
    pairs = {}
    for name in first.pairs:
        a = np.concatenate([w.pairs[name][0] for w, _ in adapters], axis=0)
        b = np.concatenate([w.pairs[name][1] * (wt * w.alpha / w.rank) for w, wt in adapters], axis=1)
        pairs[name] = (a.astype(np.float32), b.astype(np.float32))
    rank = next(iter(pairs.values()))[0].shape[0]
    return LoraWeights(first.arch, float(rank), pairs)


def ckls_logits(path, tokens, adapter=None):
    from ckls.runtime import load_model
    from ckls.runtime.lora import LoraAdapter

    with load_model(path, n_ctx=64, n_threads=1) as m:
        if adapter is not None:
            m.set_adapter(LoraAdapter.from_gguf(m, adapter))
        return m.eval(tokens, logits_all=True)


def ckls_cli(*args):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "ckls", "model", "merge", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)


TOKENS = rf.prompt_tokens(1000, 20, seed=5)


@pytest.mark.parametrize("arch,type", [("qwen2", "f32"), ("llama", "f32"), ("qwen2", "q8_0"), ("llama", "q8_0")])
def test_merged_equals_served_adapter(models, tmp_path, arch, type):
    """The command line end to end: BASE ADAPTER OUT, the merged file keeps the base's types."""
    base = models.get(arch, "tiny", type)
    ad = tmp_path / "a.gguf"
    write_adapter(ad, random_adapter(base, rank=4, alpha=8.0, seed=1))
    out = tmp_path / "merged.gguf"
    r = ckls_cli(base, ad, out, "-q")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    served = ckls_logits(base, TOKENS, ad)
    merged = ckls_logits(out, TOKENS)
    plain = ckls_logits(base, TOKENS)
    err, moved = rel(merged, served), rel(plain, served)
    print(f"{arch} {type}: merged vs base+adapter (ckls) rel {err:.2e}; the adapter moves logits by {moved:.2e}")
    assert err < TOL[type] and moved > MOVED
    if type != "f32":  # the merge's rounding is no larger than quantizing the model at all: twice that at most
        noise = rel(plain, ckls_logits(models.get(arch, "tiny", "f32"), TOKENS))
        print(f"{arch} {type}: the base's own quantization moves logits by {noise:.2e} (q8_0 vs f32)")
        assert err < 2 * noise


def test_several_weighted_adapters_and_scale(models, tmp_path):
    """--scale and --adapter PATH:WEIGHT: the merged model equals the base serving the weighted sum (one
    concatenated adapter of rank 4 + 2), negative weights included."""
    base = models.get("qwen2", "tiny", "f32")
    wa = random_adapter(base, rank=4, alpha=8.0, seed=2)
    wb = random_adapter(base, rank=2, alpha=1.0, seed=3)
    pa, pb = tmp_path / "a.gguf", tmp_path / "b.gguf"
    write_adapter(pa, wa)
    write_adapter(pb, wb)
    both = tmp_path / "ab.gguf"
    write_adapter(both, concatenated([(wa, 0.5), (wb, -1.5)]))
    out = tmp_path / "m.gguf"
    r = ckls_cli(base, pa, out, "--scale", "0.5", "--adapter", f"{pb}:-1.5", "-q")
    assert r.returncode == 0, r.stderr
    served = ckls_logits(base, TOKENS, both)
    err = rel(ckls_logits(out, TOKENS), served)
    moved = rel(ckls_logits(base, TOKENS), served)
    print(f"two adapters: merged vs base+concatenated adapter rel {err:.2e}, moved {moved:.2e}")
    assert err < TOL["f32"] and moved > MOVED
    # the same with both given as --adapter, and the order does not matter
    out2 = tmp_path / "m2.gguf"
    assert ckls_cli(base, out2, "--adapter", f"{pb}:-1.5", "--adapter", f"{pa}:0.5", "-q").returncode == 0
    assert rel(ckls_logits(out2, TOKENS), served) < TOL["f32"]


def test_copies_the_rest_and_records_the_merge(models, tmp_path):
    """Keys copied with their types, untouched tensors byte for byte, only the adapted matrices changed; --type
    gives every matrix that type (as `ckls model quantize`) and updates general.file_type."""
    import gguf

    from ckls.runtime.merge import merge

    base = models.get("llama", "tiny", "q8_0")
    ad = tmp_path / "a.gguf"
    write_adapter(ad, random_adapter(base, rank=2, alpha=2.0, seed=4, targets=("attn_v", "ffn_up")))
    out = tmp_path / "m.gguf"
    res = merge(base, [(ad, 1.0)], out)
    assert sorted(res.merged) == sorted(f"blk.{i}.{t}.weight" for i in range(2) for t in ("attn_v", "ffn_up"))
    rb, rm = gguf.GGUFReader(base), gguf.GGUFReader(str(out))
    fb, fm = rb.fields, rm.fields
    assert set(fm) == set(fb) | {"ckls.merge.adapters"}
    assert fm["ckls.merge.adapters"].contents() == "a.gguf:1"
    for k in fb:
        if not k.startswith("GGUF."):
            assert fm[k].types == fb[k].types and fm[k].contents() == fb[k].contents(), k
    tb = {t.name: t for t in rb.tensors}
    assert [t.name for t in rm.tensors] == list(tb)
    for t in rm.tensors:
        same = np.array_equal(np.asarray(t.data), np.asarray(tb[t.name].data))
        assert t.tensor_type == tb[t.name].tensor_type
        assert same == (t.name not in res.merged), t.name
    out16 = tmp_path / "m16.gguf"
    res = merge(base, [(ad, 1.0)], out16, type="f16")
    r16 = gguf.GGUFReader(str(out16))
    assert r16.fields["general.file_type"].contents() == 1
    assert all(t.tensor_type == (1 if len(t.shape) == 2 else 0) for t in r16.tensors)
    assert set(res.types.values()) == {"f16", "f32"}


@pytest.mark.parametrize("case,words,status", [
    ("missing adapter", "No such file", 1),
    ("missing base", "No such file", 1),
    ("other architecture", "for 'qwen2', the model is 'llama'", 1),
    ("other shape", "does not fit", 1),
    ("bad weight", "bad weight 'half'", 2),
    ("infinite scale", "not a finite number", 2),
    ("model as adapter", "not 'adapter'", 1),
    ("adapter as base", "not a model", 1),
    ("no adapter", "no adapter", 2),
    ("output is the adapter", "is one of the adapters", 2),
])
def test_bad_inputs_one_line(models, tmp_path, case, words, status):
    llama, qwen = models.get("llama", "tiny", "f32"), models.get("qwen2", "tiny", "f32")
    mini = models.get("qwen2", "mini", "f32")
    ad = tmp_path / "a.gguf"
    write_adapter(ad, random_adapter(qwen, rank=2, alpha=2.0, seed=5, targets=("attn_q",)))
    big = tmp_path / "big.gguf"
    write_adapter(big, random_adapter(mini, rank=2, alpha=2.0, seed=5, targets=("ffn_down",)))
    out = tmp_path / "out.gguf"
    args = {"missing adapter": (qwen, tmp_path / "none.gguf", out),
            "missing base": (tmp_path / "none.gguf", ad, out),
            "other architecture": (llama, ad, out),
            "other shape": (qwen, big, out),
            "bad weight": (qwen, out, "--adapter", f"{ad}:half"),
            "infinite scale": (qwen, ad, out, "--scale", "inf"),
            "model as adapter": (qwen, llama, out),
            "adapter as base": (ad, ad, out),
            "no adapter": (qwen, out),
            "output is the adapter": (qwen, ad, ad)}[case]
    r = ckls_cli(*args)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == status and len(lines) == 1 and words in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
    assert not list(tmp_path.glob(".ckls-*"))  # no temporary file left behind


@pytest.mark.parity
@pytest.mark.parametrize("arch,type", [("qwen2", "f32"), ("llama", "f32"), ("qwen2", "q8_0"), ("llama", "q8_0")])
def test_merged_loads_in_llama_cpp_like_its_lora(models, llama_peer, tmp_path, arch, type):
    """llama.cpp's logits of the merged file equal llama.cpp's of the base with the adapter (lora_path), and
    ckls's of the merged file; an adapter without alpha merges at scale 1, as llama.cpp reads it."""
    from ckls.runtime.merge import merge

    base = models.get(arch, "tiny", type)
    for alpha in (8.0, 0.0):
        ad = str(tmp_path / f"a{alpha:g}.gguf")
        write_adapter(ad, random_adapter(base, rank=4, alpha=alpha, seed=6))
        out = str(tmp_path / f"m{alpha:g}.gguf")
        merge(base, [(ad, 1.0)], out)
        served = llama_peer.lora_logits(base, ad, TOKENS)
        merged = llama_peer.logits(out, TOKENS)
        plain = llama_peer.logits(base, TOKENS)
        err, moved = rel(merged, served), rel(plain, served)
        print(f"{arch} {type} alpha {alpha:g}: llama.cpp merged vs llama.cpp base+lora rel {err:.2e}; "
              f"moved {moved:.2e}")
        assert err < TOL[type] and moved > MOVED
        if alpha:
            e_ours = rel(ckls_logits(out, TOKENS), merged)
            print(f"{arch} {type}: ckls vs llama.cpp on the merged file rel {e_ours:.2e}")
            assert e_ours < TOL[type]
