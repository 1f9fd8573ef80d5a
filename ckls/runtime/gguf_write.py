"""Writes llama / qwen2 models as GGUF v3 files that both ckls and llama.cpp load.

Conventions (the same as llama.cpp's converter output, so the files are interchangeable):

* `hparams` keys: ``n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train, rms_eps, rope_base`` and
  optionally ``n_rot`` (defaults to the head size). They become ``{arch}.context_length``, ``.embedding_length``,
  ``.block_count``, ``.feed_forward_length``, ``.attention.head_count``, ``.attention.head_count_kv``,
  ``.attention.layer_norm_rms_epsilon``, ``.rope.freq_base`` and ``.rope.dimension_count``.
* `tensors` maps GGUF names (``token_embd.weight``, ``blk.N.attn_q.weight``, ...) to float arrays in PyTorch
  orientation ``[n_out, n_in]``; GGUF stores the shape reversed (ne0 = n_in = row length).
* Weights are taken exactly as they should sit in the file. For ``llama`` that means Q/K rows already in the GGUF
  convention (RoPE rotates adjacent pairs 2i, 2i+1; a Hugging Face checkpoint would need llama.cpp's row
  permutation first); ``qwen2`` rotates halves (i, i + d/2) and needs no permutation.
* 1-D tensors (norms, biases) are always F32. Matrices get `tensor_types[name]` or `default_type`, quantized by
  ckls's own quantizer. A matrix whose row length is not a multiple of its type's block falls back like
  llama.cpp's quantizer: Q6_K -> Q8_0; Q4_K -> Q4_0 (llama.cpp picks Q5_0, which ckls does not hold);
  and when the row does not fit that block either (or the type is Q8_0 / Q4_0) -> F16.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ckls import atomic

# Type names as `ckls model quantize` spells them -> ggml type ids (ckls.h uses ggml's values).
TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8, "q4_k": 12, "q6_k": 14, "bf16": 30}
TYPE_NAMES = {v: k for k, v in TYPE_IDS.items()}
BLOCK = {0: 1, 1: 1, 30: 1, 2: 32, 8: 32, 12: 256, 14: 256}
BLOCK_BYTES = {0: 4, 1: 2, 30: 2, 2: 18, 8: 34, 12: 144, 14: 210}
FALLBACK = {14: 8, 12: 2, 8: 1, 2: 1}

# llama_ftype of a file whose matrices are "mostly" one type (general.file_type); q4_k is Q4_K_S (14):
# every matrix Q4_K, no Q6_K mix.
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "q4_k": 14, "q6_k": 18, "bf16": 32}

ARCHS = ("llama", "qwen2")
HPARAM_KEYS = ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_ctx_train", "rms_eps", "rope_base")

TOKEN_NORMAL, TOKEN_CONTROL = 1, 3


@dataclass
class VocabSpec:
    """A byte-level BPE vocabulary (tokenizer.ggml.model = gpt2).

    tokens: token texts in GGUF's byte-level form (each byte shown as its printable stand-in, space = 'Ġ').
    merges: "left right" strings, highest priority first. fim: ids keyed pre/suf/mid/pad/rep/sep.
    """

    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str = "default"
    bos_id: int | None = None
    eos_id: int | None = None
    pad_id: int | None = None
    fim: dict[str, int] = field(default_factory=dict)
    add_bos: bool = False


def type_id(t: str | int) -> int:
    if isinstance(t, (int, np.integer)):
        if int(t) not in TYPE_NAMES:
            raise ValueError(f"unsupported tensor type id {t}")
        return int(t)
    key = str(t).lower()
    if key not in TYPE_IDS:
        raise ValueError(f"unsupported tensor type {t!r}; expected one of {sorted(TYPE_IDS)}")
    return TYPE_IDS[key]


def storage_type(want: int, n_cols: int) -> int:
    """The type a row of n_cols gets when `want` is asked for (llama.cpp-style fallback, see module doc)."""
    t = want
    while n_cols % BLOCK[t]:
        t = FALLBACK[t]
    return t


def quantize_matrix(x: np.ndarray, t: int) -> np.ndarray:
    """Quantizes a 2-D float array row by row with ckls's quantizer; returns raw bytes [rows, row_bytes]."""
    from ckls.native import check, ffi, lib

    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    rows, cols = x.shape
    if cols % BLOCK[t]:
        raise ValueError(f"row of {cols} is not a multiple of {TYPE_NAMES[t]}'s block {BLOCK[t]}")
    out = np.empty((rows, cols // BLOCK[t] * BLOCK_BYTES[t]), dtype=np.uint8)
    if t == 0:
        out[:] = x.view(np.uint8).reshape(rows, -1)
        return out
    check(lib.ckls_quantize_rows(t, ffi.from_buffer("float[]", x), ffi.from_buffer(out), rows, cols, ffi.NULL))
    return out


# Types the `gguf` package's numpy reference quantizer writes; native Q8_0 and Q4_0 are bit-equal to it.
REFERENCE_TYPES = (0, 1, 2, 8, 30)


def quantize_reference(x: np.ndarray, t: int) -> np.ndarray:
    """quantize_matrix without the native build: the `gguf` package's numpy reference, for the types in
    REFERENCE_TYPES (f32, f16, bf16, q8_0, q4_0). The factory exports with it on GPU machines, which have no
    native build; the bytes are the same as quantize_matrix's."""
    import gguf

    if t not in REFERENCE_TYPES:
        raise ValueError(f"{TYPE_NAMES.get(t, t)} needs ckls's native quantizer; the reference one writes "
                         f"{sorted(TYPE_NAMES[k] for k in REFERENCE_TYPES)}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.shape[1] % BLOCK[t]:
        raise ValueError(f"row of {x.shape[1]} is not a multiple of {TYPE_NAMES[t]}'s block {BLOCK[t]}")
    if t == 0:
        return x.view(np.uint8).reshape(x.shape[0], -1)
    if t == 1:
        return x.astype(np.float16).view(np.uint8).reshape(x.shape[0], -1)
    return gguf.quants.quantize(x, gguf.GGMLQuantizationType(t))


def _expected_shapes(arch: str, hp: dict) -> dict[str, tuple[int, ...]]:
    d, hd = hp["n_embd"], hp["n_embd"] // hp["n_head"]
    dq, dkv, ff = hp["n_head"] * hd, hp["n_head_kv"] * hd, hp["n_ff"]
    s = {"token_embd.weight": (hp["n_vocab"], d), "output_norm.weight": (d,), "output.weight": (hp["n_vocab"], d)}
    for i in range(hp["n_layer"]):
        p = f"blk.{i}."
        s.update({p + "attn_norm.weight": (d,), p + "attn_q.weight": (dq, d), p + "attn_k.weight": (dkv, d),
                  p + "attn_v.weight": (dkv, d), p + "attn_output.weight": (d, dq), p + "ffn_norm.weight": (d,),
                  p + "ffn_gate.weight": (ff, d), p + "ffn_up.weight": (ff, d), p + "ffn_down.weight": (d, ff)})
        if arch == "qwen2":
            s.update({p + "attn_q.bias": (dq,), p + "attn_k.bias": (dkv,), p + "attn_v.bias": (dkv,)})
    return s


def _check(arch: str, hp: dict, tensors: dict) -> None:
    if arch not in ARCHS:
        raise ValueError(f"unsupported architecture {arch!r}; expected one of {ARCHS}")
    missing = [k for k in HPARAM_KEYS if k not in hp]
    if missing:
        raise ValueError(f"hparams lack {missing}")
    if hp["n_embd"] % hp["n_head"] or hp["n_head"] % hp["n_head_kv"]:
        raise ValueError("n_embd must divide by n_head and n_head by n_head_kv")
    want = _expected_shapes(arch, hp)
    optional = {"output.weight"}
    for name, shape in want.items():
        if name not in tensors:
            if name in optional:
                continue
            raise ValueError(f"tensor {name} is missing")
        if tuple(tensors[name].shape) != shape:
            raise ValueError(f"tensor {name} has shape {tuple(tensors[name].shape)}, expected {shape}")
    extra = sorted(set(tensors) - set(want))
    if extra:
        raise ValueError(f"unexpected tensors {extra[:5]}")


def add_vocab(w, vocab: VocabSpec) -> None:
    """Adds the tokenizer.ggml.* keys of a byte-level BPE vocabulary to a gguf.GGUFWriter."""
    if len(vocab.tokens) != len(vocab.token_types):
        raise ValueError("tokens and token_types differ in length")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(vocab.pre)
    w.add_token_list(vocab.tokens)
    w.add_token_types([int(t) for t in vocab.token_types])
    w.add_token_merges(vocab.merges)
    if vocab.bos_id is not None:
        w.add_bos_token_id(vocab.bos_id)
    if vocab.eos_id is not None:
        w.add_eos_token_id(vocab.eos_id)
    if vocab.pad_id is not None:
        w.add_pad_token_id(vocab.pad_id)
    w.add_add_bos_token(vocab.add_bos)
    for k, tid in vocab.fim.items():
        if k not in ("pre", "suf", "mid", "pad", "rep", "sep"):
            raise ValueError(f"unknown FIM token key {k!r}")
        w.add_uint32(f"tokenizer.ggml.fim_{k}_token_id", int(tid))


def add_kv(w, key: str, value) -> None:
    """Adds one metadata key to a gguf.GGUFWriter with ckls's one typing rule: bool; int as uint32 (int32 when
    negative), uint64 / int64 only when it does not fit 32 bits (llama.cpp reads its own integer keys as 32-bit);
    float as float32; str; anything else as an array."""
    if isinstance(value, bool):
        w.add_bool(key, value)
    elif isinstance(value, (int, np.integer)):
        v = int(value)
        if v >= 0:
            w.add_uint32(key, v) if v < 1 << 32 else w.add_uint64(key, v)
        else:
            w.add_int32(key, v) if v >= -(1 << 31) else w.add_int64(key, v)
    elif isinstance(value, (float, np.floating)):
        w.add_float32(key, float(value))
    elif isinstance(value, str):
        w.add_string(key, value)
    else:
        w.add_array(key, list(value))


def write_file(path: str | os.PathLike, arch: str, build: Callable) -> None:
    """The one GGUF writer: build(w) adds keys and tensors to a gguf.GGUFWriter for `arch`; the file is written
    whole and put in place atomically (ckls.atomic), so a reader sees the old file or the new one."""
    import logging

    import gguf

    logging.getLogger("gguf.gguf_writer").setLevel(logging.WARNING)  # it logs every file it writes at INFO

    def fill(tmp: str) -> None:
        w = gguf.GGUFWriter(tmp, arch)
        build(w)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    atomic.write_with(path, fill, suffix=".gguf.tmp")


def write_model(path, arch: str, hparams: dict, tensors: dict[str, np.ndarray], vocab: VocabSpec,
                tensor_types: dict[str, str] | None = None, default_type: str = "f32",
                extra_kv: dict | None = None, padded_vocab: bool = False,
                quantize: Callable[[np.ndarray, int], np.ndarray] = quantize_matrix) -> dict[str, str]:
    """Writes a GGUF v3 model; returns the type each tensor got (name -> type name). padded_vocab: the embedding
    may have more rows than the vocabulary has tokens (as some converted models do; llama.cpp loads them).
    quantize(x, type id) -> raw rows: ckls's native quantizer, or quantize_reference where there is no build."""
    import gguf

    hp = dict(hparams)
    _check(arch, hp, tensors)
    if len(vocab.tokens) > hp["n_vocab"] or (len(vocab.tokens) < hp["n_vocab"] and not padded_vocab):
        raise ValueError(f"vocab has {len(vocab.tokens)} tokens, hparams say {hp['n_vocab']}")
    default = type_id(default_type)
    tensor_types = {k: type_id(v) for k, v in (tensor_types or {}).items()}
    got: dict[str, str] = {}

    def build(w) -> None:
        w.add_file_type(FILE_TYPE[TYPE_NAMES[default]])
        if default not in (0, 1, 30):
            w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        a = arch
        w.add_uint32(f"{a}.context_length", int(hp["n_ctx_train"]))
        w.add_uint32(f"{a}.embedding_length", int(hp["n_embd"]))
        w.add_uint32(f"{a}.block_count", int(hp["n_layer"]))
        w.add_uint32(f"{a}.feed_forward_length", int(hp["n_ff"]))
        w.add_uint32(f"{a}.attention.head_count", int(hp["n_head"]))
        w.add_uint32(f"{a}.attention.head_count_kv", int(hp["n_head_kv"]))
        w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", float(hp["rms_eps"]))
        w.add_float32(f"{a}.rope.freq_base", float(hp["rope_base"]))
        w.add_uint32(f"{a}.rope.dimension_count", int(hp.get("n_rot", hp["n_embd"] // hp["n_head"])))
        w.add_uint32(f"{a}.vocab_size", int(hp["n_vocab"]))
        add_vocab(w, vocab)
        for k, v in (extra_kv or {}).items():
            add_kv(w, k, v)
        for name, x in tensors.items():
            x = np.asarray(x, dtype=np.float32)
            if x.ndim == 1:
                t = 0
            else:
                t = storage_type(tensor_types.get(name, default), x.shape[-1])
            got[name] = TYPE_NAMES[t]
            if t == 0:
                w.add_tensor(name, np.ascontiguousarray(x))
            else:
                w.add_tensor(name, quantize(x, t), raw_dtype=gguf.GGMLQuantizationType(t))

    write_file(path, arch, build)
    return got
