"""Random models of named shapes, for tests and benchmarks: valid GGUF files that ckls and llama.cpp both load.

The weights are noise, but scaled so the logits spread over a few units (not a flat distribution), which makes
greedy continuations a meaningful thing to compare between runtimes.
"""
from __future__ import annotations

import os

import numpy as np

from .gguf_write import TOKEN_CONTROL, TOKEN_NORMAL, VocabSpec, write_model

SHAPES: dict[str, dict] = {
    # few layers, d 64: the fast unit-test model (GQA 4:2 so the grouped path is exercised)
    "tiny": dict(n_vocab=1000, n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=160, n_ctx_train=2048),
    # rows of 256 so the K-quants are exercised as such (tiny's 64-wide rows fall back to Q4_0 / Q8_0)
    "mini": dict(n_vocab=1000, n_embd=256, n_layer=2, n_head=4, n_head_kv=2, n_ff=512, n_ctx_train=2048),
    # ~30M parameters: the default model's size
    "small": dict(n_vocab=16384, n_embd=512, n_layer=8, n_head=8, n_head_kv=4, n_ff=1408, n_ctx_train=2048),
    # Qwen2.5-0.5B's shape (qwen2 with QKV biases, tied output)
    "qwen05b": dict(n_vocab=151936, n_embd=896, n_layer=24, n_head=14, n_head_kv=2, n_ff=4864, n_ctx_train=32768),
}

SPECIALS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
            "<|repo_name|>", "<|file_sep|>"]
FIM_KEYS = {"pre": "<|fim_prefix|>", "mid": "<|fim_middle|>", "suf": "<|fim_suffix|>", "pad": "<|fim_pad|>",
            "rep": "<|repo_name|>", "sep": "<|file_sep|>"}

# Characters ordered roughly by how often they occur in code, so early merges look like real ones.
_ALPHABET = (" etaoinsrlhdcupfmgb_y()w.=,:vk\n'\"x[]0123456789-{}jq#+*/><;!&|%z\t\\@~?^$`"
             "ETAOINSRLHDCUPFMGBYWVKXJQZ")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: printable bytes stand for themselves, the rest map to chr(256 + k)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    out, k = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + k)
            k += 1
    return out


def synth_vocab(n_vocab: int, pre: str = "qwen2") -> VocabSpec:
    """A valid byte-level BPE vocabulary of exactly n_vocab tokens: 256 byte tokens, deterministic merges of
    common ASCII pairs (then pair + char, then longer runs), and the end/FIM special tokens as CONTROL at the end."""
    n_merges = n_vocab - 256 - len(SPECIALS)
    if n_merges < 0:
        raise ValueError(f"n_vocab must be at least {256 + len(SPECIALS)}")
    b2u = bytes_to_unicode()
    byte_tokens = [b2u[b] for b in range(256)]
    alpha = [b2u[ord(c)] for c in _ALPHABET]
    tokens = list(byte_tokens)
    seen = set(tokens)
    merges: list[str] = []
    level = list(alpha)  # tokens of the previous level, extended one char at a time
    while len(merges) < n_merges:
        nxt = []
        for a in level:
            for c in alpha:
                if len(merges) == n_merges:
                    break
                t = a + c
                if t in seen:
                    continue
                seen.add(t)
                tokens.append(t)
                merges.append(f"{a} {c}")
                nxt.append(t)
            if len(merges) == n_merges:
                break
        if not nxt:
            raise ValueError("cannot build that many merges")
        level = nxt
    base = len(tokens)
    tokens += SPECIALS
    types = [TOKEN_NORMAL] * base + [TOKEN_CONTROL] * len(SPECIALS)
    eos = base
    fim = {k: base + SPECIALS.index(v) for k, v in FIM_KEYS.items()}
    return VocabSpec(tokens=tokens, token_types=types, merges=merges, pre=pre, bos_id=eos, eos_id=eos,
                     pad_id=fim["pad"], fim=fim, add_bos=False)


def synth_weights(arch: str, hp: dict, seed: int, tied: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    d, ff, nv = hp["n_embd"], hp["n_ff"], hp["n_vocab"]
    hd = d // hp["n_head"]
    dq, dkv = hp["n_head"] * hd, hp["n_head_kv"] * hd

    def mat(n_out, n_in, gain=1.0):
        return (rng.standard_normal((n_out, n_in), dtype=np.float32) * (gain / np.sqrt(n_in))).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    # Embedding rows of rms ~4/sqrt(d): after the final RMS norm the (tied) logits spread with std ~4, so the
    # top two are usually well apart.
    t = {"token_embd.weight": (rng.standard_normal((nv, d), dtype=np.float32) * (4.0 / np.sqrt(d))).astype(np.float32)}
    for i in range(hp["n_layer"]):
        p = f"blk.{i}."
        t[p + "attn_norm.weight"] = norm(d)
        t[p + "attn_q.weight"] = mat(dq, d)
        t[p + "attn_k.weight"] = mat(dkv, d)
        t[p + "attn_v.weight"] = mat(dkv, d)
        if arch == "qwen2":
            t[p + "attn_q.bias"] = (0.1 * rng.standard_normal(dq)).astype(np.float32)
            t[p + "attn_k.bias"] = (0.1 * rng.standard_normal(dkv)).astype(np.float32)
            t[p + "attn_v.bias"] = (0.1 * rng.standard_normal(dkv)).astype(np.float32)
        # layer outputs well above the embedding: with a tied output a small residual would just echo the input token
        t[p + "attn_output.weight"] = mat(d, dq, 3.0)
        t[p + "ffn_norm.weight"] = norm(d)
        t[p + "ffn_gate.weight"] = mat(ff, d)
        t[p + "ffn_up.weight"] = mat(ff, d)
        t[p + "ffn_down.weight"] = mat(d, ff, 3.0)
    t["output_norm.weight"] = norm(d)
    if not tied:
        t["output.weight"] = mat(nv, d, 4.0)
    return t


def shape_hparams(shape: str | dict) -> dict:
    hp = dict(SHAPES[shape]) if isinstance(shape, str) else dict(shape)
    hp.setdefault("rms_eps", 1e-6)
    hp.setdefault("rope_base", 10000.0 if hp["n_ctx_train"] <= 4096 else 1000000.0)
    return hp


def synth_model(path: str | os.PathLike, arch: str = "qwen2", shape: str | dict = "tiny", type: str = "f32",
                seed: int = 0, tied: bool | None = None, tensor_types: dict[str, str] | None = None) -> dict:
    """Writes a random model; returns its hparams. tied defaults to True for qwen2 (as Qwen2.5-0.5B) and False
    for llama. Same arguments -> byte-identical file."""
    hp = shape_hparams(shape)
    if tied is None:
        tied = arch == "qwen2"
    pre = "qwen2" if arch == "qwen2" else "gpt-2"
    vocab = synth_vocab(hp["n_vocab"], pre)
    tensors = synth_weights(arch, hp, seed, tied)
    write_model(path, arch, hp, tensors, vocab, tensor_types=tensor_types, default_type=type,
                extra_kv={"general.name": f"ckls-synth-{arch}-{shape if isinstance(shape, str) else 'custom'}"})
    return hp
