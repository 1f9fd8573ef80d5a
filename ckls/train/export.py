"""Checkpoint → GGUF (`llama` architecture) with the tokenizer in the metadata.

Types: f32, f16, or q8_0 (2-D weights whose rows are a multiple of 32; norms stay f32, as llama.cpp's converter
does). Quantization is the `gguf` package's reference Q8_0, so exporting needs no native build (the GPU
machine has none). Keys and tensors match ckls.runtime.gguf_write.write_model (a test compares the files).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ckls import atomic

FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7}  # llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0


def tensors_from_state(state: dict) -> dict[str, np.ndarray]:
    """Torch state dict of model.Llama → {gguf name: float32 array}; module names already are GGUF names."""
    out = {}
    for k, v in state.items():
        if k.startswith("_orig_mod."):
            k = k[len("_orig_mod."):]
        out[k] = v.detach().float().cpu().numpy()
    return out


def write(path: str | Path, cfg: dict, tensors: dict[str, np.ndarray], vocab: dict, ftype: str = "f16",
          name: str = "ckls-code") -> Path:
    import gguf

    if ftype not in FILE_TYPES:
        raise ValueError(f"unknown type {ftype}; expected one of {sorted(FILE_TYPES)}")
    path = Path(path)

    def fill(tmp: str) -> None:
        w = gguf.GGUFWriter(tmp, "llama")
        w.add_name(name)
        w.add_file_type(FILE_TYPES[ftype])
        if ftype == "q8_0":
            w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        w.add_context_length(cfg["max_seq"])
        w.add_embedding_length(cfg["dim"])
        w.add_block_count(cfg["n_layers"])
        w.add_feed_forward_length(cfg["ffn_dim"])
        w.add_head_count(cfg["n_heads"])
        w.add_head_count_kv(cfg["n_kv_heads"])
        w.add_layer_norm_rms_eps(cfg["norm_eps"])
        w.add_rope_freq_base(cfg["rope_theta"])
        w.add_rope_dimension_count(cfg["dim"] // cfg["n_heads"])
        w.add_vocab_size(cfg["vocab_size"])

        ids = vocab["ids"]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(vocab["pre"])
        w.add_token_list(vocab["tokens"])
        w.add_token_types(vocab["types"])
        w.add_token_merges(vocab["merges"])
        w.add_bos_token_id(ids["<|endoftext|>"])
        w.add_eos_token_id(ids["<|endoftext|>"])
        w.add_pad_token_id(ids["<|fim_pad|>"])
        w.add_add_bos_token(False)
        K = gguf.Keys.Tokenizer
        w.add_uint32(K.FIM_PRE_ID, ids["<|fim_prefix|>"])
        w.add_uint32(K.FIM_SUF_ID, ids["<|fim_suffix|>"])
        w.add_uint32(K.FIM_MID_ID, ids["<|fim_middle|>"])
        w.add_uint32(K.FIM_PAD_ID, ids["<|fim_pad|>"])
        w.add_uint32(K.FIM_REP_ID, ids["<|repo_name|>"])
        w.add_uint32(K.FIM_SEP_ID, ids["<|file_sep|>"])

        order = ["token_embd.weight"]
        for i in range(cfg["n_layers"]):
            order += [f"blk.{i}.{n}.weight" for n in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                                       "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")]
        order.append("output_norm.weight")
        if "output.weight" in tensors:
            order.append("output.weight")
        missing = set(order) - set(tensors)
        extra = set(tensors) - set(order)
        if missing or extra:
            raise ValueError(f"tensor names do not match the config: missing {sorted(missing)}, extra {sorted(extra)}")
        for n in order:
            t = np.ascontiguousarray(tensors[n], dtype=np.float32)
            if t.ndim == 1 or ftype == "f32":
                w.add_tensor(n, t)
            elif ftype == "f16" or t.shape[-1] % 32:
                w.add_tensor(n, t.astype(np.float16))
            else:
                q = gguf.quants.quantize(t, gguf.GGMLQuantizationType.Q8_0)
                w.add_tensor(n, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    atomic.write_with(path, fill, suffix=".gguf.tmp")  # (ckls.runtime's writer needs the native build; this not)
    return path


def from_checkpoint(ckpt: str | Path, tokenizer_json: str | Path, out: str | Path, ftype: str = "f16",
                    name: str = "ckls-code") -> Path:
    import torch

    from . import tokenizer as tk

    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    vocab = tk.gguf_vocab(tk.load(tokenizer_json))
    if len(vocab["tokens"]) != ck["cfg"]["vocab_size"]:
        raise ValueError(f"tokenizer has {len(vocab['tokens'])} tokens, model {ck['cfg']['vocab_size']}")
    return write(out, ck["cfg"], tensors_from_state(ck["model"]), vocab, ftype, name)
