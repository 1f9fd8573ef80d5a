"""A PyTorch llama / qwen2 forward with LoRA, built from a GGUF file's dequantized weights (through
reference_forward.load, which reads the file with gguf-py): the autograd yardstick for ckls's training step."""
from __future__ import annotations

import numpy as np
import torch

import reference_forward as ref

TARGET_WEIGHTS = {"attn_q": "attn_q.weight", "attn_k": "attn_k.weight", "attn_v": "attn_v.weight",
                  "attn_output": "attn_output.weight", "ffn_gate": "ffn_gate.weight", "ffn_up": "ffn_up.weight",
                  "ffn_down": "ffn_down.weight"}


class TorchLora:
    def __init__(self, path: str, dtype=torch.float64):
        m = ref.load(path)
        self.arch, self.hp, self.dtype = m.arch, m.hp, dtype
        self.w = {k: torch.tensor(v, dtype=dtype) for k, v in m.w.items()}

    def rope(self, x: torch.Tensor, n_tok: int) -> torch.Tensor:
        hp = self.hp
        n_rot, half = hp["n_rot"], hp["n_rot"] // 2
        pos = torch.arange(n_tok, dtype=torch.float64)
        theta = pos[:, None] * hp["rope_base"] ** (-2.0 * torch.arange(half, dtype=torch.float64) / n_rot)
        c, s = torch.cos(theta)[:, None, :].to(x.dtype), torch.sin(theta)[:, None, :].to(x.dtype)
        if self.arch == "qwen2":
            i0 = torch.arange(half)
            i1 = i0 + half
        else:
            i0 = 2 * torch.arange(half)
            i1 = i0 + 1
        a, b = x[..., i0], x[..., i1]
        out = x.clone()
        out[..., i0] = a * c - b * s
        out[..., i1] = a * s + b * c
        return out

    def forward(self, tokens, lora: dict, scale: float) -> torch.Tensor:
        """Logits [n_tok, n_vocab]; lora maps (layer, target) -> (A, B) tensors."""
        hp, w = self.hp, self.w
        n = len(tokens)
        nh, nkv, hd = hp["n_head"], hp["n_head_kv"], hp["head_dim"]

        def lin(layer, target, x):
            y = x @ w[f"blk.{layer}.{TARGET_WEIGHTS[target]}"].T
            if (layer, target) in lora:
                A, B = lora[(layer, target)]
                y = y + scale * ((x @ A.T) @ B.T)
            return y

        def norm(x, wt):
            return x / torch.sqrt((x * x).mean(-1, keepdim=True) + hp["rms_eps"]) * wt

        x = w["token_embd.weight"][torch.as_tensor(tokens)]
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
        for i in range(hp["n_layer"]):
            p = f"blk.{i}."
            h = norm(x, w[p + "attn_norm.weight"])
            q, k, v = lin(i, "attn_q", h), lin(i, "attn_k", h), lin(i, "attn_v", h)
            if p + "attn_q.bias" in w:
                q, k, v = q + w[p + "attn_q.bias"], k + w[p + "attn_k.bias"], v + w[p + "attn_v.bias"]
            q = self.rope(q.reshape(n, nh, hd), n)
            k = self.rope(k.reshape(n, nkv, hd), n)
            v = v.reshape(n, nkv, hd)
            g = nh // nkv
            kh, vh = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
            s = torch.einsum("thd,khd->htk", q, kh) / np.sqrt(hd)
            s = torch.softmax(s.masked_fill(mask[None], float("-inf")), dim=-1)
            att = torch.einsum("htk,khd->thd", s, vh).reshape(n, nh * hd)
            x = x + lin(i, "attn_output", att)
            h = norm(x, w[p + "ffn_norm.weight"])
            gt, up = lin(i, "ffn_gate", h), lin(i, "ffn_up", h)
            x = x + lin(i, "ffn_down", torch.nn.functional.silu(gt) * up)
        x = norm(x, w["output_norm.weight"])
        return x @ w.get("output.weight", w["token_embd.weight"]).T
