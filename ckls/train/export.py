"""Checkpoint → GGUF (`llama` architecture) with the tokenizer in the metadata, through the runtime's one GGUF
writer (ckls.runtime.gguf_write.write_model).

Types: f32, f16, or q8_0 (2-D weights whose rows are a multiple of 32; norms stay f32, as llama.cpp's converter
does). Quantization is the `gguf` package's reference (gguf_write.quantize_reference, bit-equal to ckls's native
quantizer for these types), so exporting needs no native build: the GPU machine has none, and
ckls.runtime.gguf_write imports without it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ckls.fim.tokens import EOT, FILE_SEP, FIM_MID, FIM_PAD, FIM_PRE, FIM_SUF, REPO
from ckls.runtime import gguf_write

FILE_TYPES = {t: gguf_write.FILE_TYPE[t] for t in ("f32", "f16", "q8_0")}  # llama_ftype of each export type


def tensors_from_state(state: dict) -> dict[str, np.ndarray]:
    """Torch state dict of model.Llama → {gguf name: float32 array}; module names already are GGUF names."""
    out = {}
    for k, v in state.items():
        if k.startswith("_orig_mod."):
            k = k[len("_orig_mod."):]
        out[k] = v.detach().float().cpu().numpy()
    return out


def hparams(cfg: dict) -> dict:
    """The factory's model config (model.Config.to_dict()) → gguf_write's hparams."""
    return {"n_vocab": cfg["vocab_size"], "n_embd": cfg["dim"], "n_layer": cfg["n_layers"],
            "n_head": cfg["n_heads"], "n_head_kv": cfg["n_kv_heads"], "n_ff": cfg["ffn_dim"],
            "n_ctx_train": cfg["max_seq"], "rms_eps": cfg["norm_eps"], "rope_base": cfg["rope_theta"]}


def vocab_spec(vocab: dict) -> gguf_write.VocabSpec:
    """tokenizer.gguf_vocab()'s dict → gguf_write's VocabSpec: no BOS added; EOS = BOS = <|endoftext|>; pad and
    the FIM ids from the special tokens."""
    ids = vocab["ids"]
    return gguf_write.VocabSpec(
        tokens=vocab["tokens"], token_types=vocab["types"], merges=vocab["merges"], pre=vocab["pre"],
        bos_id=ids[EOT], eos_id=ids[EOT], pad_id=ids[FIM_PAD], add_bos=False,
        fim={"pre": ids[FIM_PRE], "suf": ids[FIM_SUF], "mid": ids[FIM_MID], "pad": ids[FIM_PAD], "rep": ids[REPO],
             "sep": ids[FILE_SEP]})


def write(path: str | Path, cfg: dict, tensors: dict[str, np.ndarray], vocab: dict, ftype: str = "f16",
          name: str = "ckls-code") -> Path:
    if ftype not in FILE_TYPES:
        raise ValueError(f"unknown type {ftype}; expected one of {sorted(FILE_TYPES)}")
    path = Path(path)
    gguf_write.write_model(path, "llama", hparams(cfg), tensors, vocab_spec(vocab), default_type=ftype,
                           extra_kv={"general.name": name}, quantize=gguf_write.quantize_reference)
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
