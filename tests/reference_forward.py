"""An independent float64 NumPy forward of llama / qwen2 GGUF models, the yardstick for ckls's C forward.

It shares nothing with ckls: the file is read with gguf.GGUFReader and dequantized with gguf.quants.dequantize,
and every op is written out plainly here, following llama.cpp's graph (RMS norm, RoPE adjacent pairs for llama /
halves for qwen2, GQA causal attention, SwiGLU FFN, tied output when output.weight is absent). A LoRA adapter
(load_lora) adds scale · B (A x) to each adapted matrix product, as llama.cpp's llm_build_lora_mm does.
"""
from __future__ import annotations

from dataclasses import dataclass

import gguf
import numpy as np


@dataclass
class RefModel:
    arch: str
    hp: dict
    w: dict  # name -> float64 array, PyTorch orientation [n_out, n_in]


def _field(reader: gguf.GGUFReader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            raise KeyError(key)
        return default
    return f.contents()


def load(path) -> RefModel:
    r = gguf.GGUFReader(path)
    arch = _field(r, "general.architecture")
    a = arch
    hp = dict(
        n_embd=int(_field(r, f"{a}.embedding_length")),
        n_layer=int(_field(r, f"{a}.block_count")),
        n_ff=int(_field(r, f"{a}.feed_forward_length")),
        n_head=int(_field(r, f"{a}.attention.head_count")),
        n_head_kv=int(_field(r, f"{a}.attention.head_count_kv")),
        rms_eps=float(_field(r, f"{a}.attention.layer_norm_rms_epsilon")),
        rope_base=float(_field(r, f"{a}.rope.freq_base", 10000.0)),
    )
    hp["head_dim"] = hp["n_embd"] // hp["n_head"]
    hp["n_rot"] = int(_field(r, f"{a}.rope.dimension_count", hp["head_dim"]))
    w = {}
    for t in r.tensors:
        x = gguf.quants.dequantize(t.data, t.tensor_type)
        shape = tuple(int(s) for s in reversed(t.shape))
        w[t.name] = np.asarray(x, dtype=np.float64).reshape(shape)
    hp["n_vocab"] = w["token_embd.weight"].shape[0]
    return RefModel(arch, hp, w)


def load_lora(path, user_scale: float = 1.0) -> dict:
    """A LoRA GGUF read with gguf.GGUFReader: base tensor name -> (A [r, n_in], B [n_out, r], scale) in float64,
    scale = user_scale · alpha / r (llama.cpp's rule; alpha 0 means scale = user_scale)."""
    r = gguf.GGUFReader(path)
    assert _field(r, "general.type") == "adapter" and _field(r, "adapter.type") == "lora"
    alpha = float(_field(r, "adapter.lora.alpha", 0.0))
    parts: dict = {}
    for t in r.tensors:
        base, _, kind = t.name.rpartition(".")
        x = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float64)
        parts.setdefault(base, {})[kind] = x.reshape(tuple(int(s) for s in reversed(t.shape)))
    out = {}
    for base, d in parts.items():
        a, b = d["lora_a"], d["lora_b"]
        rank = b.shape[1]
        out[base] = (a, b, user_scale * alpha / rank if alpha else user_scale)
    return out


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x: np.ndarray, pos: np.ndarray, n_rot: int, base: float, neox: bool) -> np.ndarray:
    """x: [n_tok, n_head, head_dim]; rotates the first n_rot dims of each head by angle pos * base^(-2i/n_rot)."""
    x = x.copy()
    half = n_rot // 2
    theta = pos[:, None] * base ** (-2.0 * np.arange(half) / n_rot)  # [n_tok, half]
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    if neox:
        i0, i1 = np.arange(half), np.arange(half) + half
    else:
        i0, i1 = 2 * np.arange(half), 2 * np.arange(half) + 1
    a, b = x[..., i0].copy(), x[..., i1].copy()
    x[..., i0] = a * c - b * s
    x[..., i1] = a * s + b * c
    return x


def forward(m: RefModel, tokens, pos0: int = 0, cache: dict | None = None, lora: dict | None = None) -> np.ndarray:
    """Logits [n_tok, n_vocab] (float64) for every position. With `cache` (a dict, initially empty) keys and
    values persist across calls, so a prompt can be extended token by token. `lora`: from load_lora."""
    hp, w = m.hp, m.w
    lora = lora or {}

    def mm(h, name):
        y = h @ w[name].T
        if name in lora:
            a, b, scale = lora[name]
            y = y + scale * ((h @ a.T) @ b.T)
        return y

    tokens = np.asarray(tokens, dtype=np.int64)
    n_tok = len(tokens)
    nh, nkv, hd = hp["n_head"], hp["n_head_kv"], hp["head_dim"]
    neox = m.arch == "qwen2"
    pos = np.arange(pos0, pos0 + n_tok, dtype=np.float64)
    cache = {} if cache is None else cache
    x = w["token_embd.weight"][tokens]
    for i in range(hp["n_layer"]):
        p = f"blk.{i}."
        h = rms_norm(x, w[p + "attn_norm.weight"], hp["rms_eps"])
        q, k, v = mm(h, p + "attn_q.weight"), mm(h, p + "attn_k.weight"), mm(h, p + "attn_v.weight")
        if p + "attn_q.bias" in w:
            q, k, v = q + w[p + "attn_q.bias"], k + w[p + "attn_k.bias"], v + w[p + "attn_v.bias"]
        q = rope(q.reshape(n_tok, nh, hd), pos, hp["n_rot"], hp["rope_base"], neox)
        k = rope(k.reshape(n_tok, nkv, hd), pos, hp["n_rot"], hp["rope_base"], neox)
        v = v.reshape(n_tok, nkv, hd)
        kc, vc = cache.get(i, (np.zeros((0, nkv, hd)), np.zeros((0, nkv, hd))))
        kc, vc = np.concatenate([kc[:pos0], k]), np.concatenate([vc[:pos0], v])
        cache[i] = (kc, vc)
        n_kv = kc.shape[0]
        group = nh // nkv
        kh = np.repeat(kc, group, axis=1)  # [n_kv, nh, hd]: query head j reads kv head j // group
        vh = np.repeat(vc, group, axis=1)
        s = np.einsum("thd,khd->htk", q, kh) / np.sqrt(hd)
        mask = np.arange(n_kv)[None, :] > (pos0 + np.arange(n_tok))[:, None]
        s = np.where(mask[None], -np.inf, s)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        att = np.einsum("htk,khd->thd", s, vh).reshape(n_tok, nh * hd)
        x = x + mm(att, p + "attn_output.weight")
        h = rms_norm(x, w[p + "ffn_norm.weight"], hp["rms_eps"])
        g, u = mm(h, p + "ffn_gate.weight"), mm(h, p + "ffn_up.weight")
        x = x + mm(g / (1.0 + np.exp(-g)) * u, p + "ffn_down.weight")
    x = rms_norm(x, w["output_norm.weight"], hp["rms_eps"])
    out = w.get("output.weight", w["token_embd.weight"])
    return x @ out.T


def greedy(m: RefModel, prompt, n: int) -> list[int]:
    """Greedy continuation of n tokens (KV-cached, one token per step)."""
    cache: dict = {}
    logits = forward(m, prompt, 0, cache)
    out, pos = [], len(prompt)
    for _ in range(n):
        t = int(np.argmax(logits[-1]))
        out.append(t)
        logits = forward(m, [t], pos, cache)
        pos += 1
    return out


def prompt_tokens(n_vocab: int, n: int, seed: int) -> list[int]:
    """A fixed pseudo-random prompt of ordinary tokens (the synthetic vocabularies keep specials at the end)."""
    rng = np.random.default_rng(seed)
    return [int(t) for t in rng.integers(0, n_vocab - 16, size=n)]


def rel(a, b) -> float:
    """How far logits a are from b: the rms of their difference over b's spread (what the parity tolerances bound)."""
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)) / np.std(b))
