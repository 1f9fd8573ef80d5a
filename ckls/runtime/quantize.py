"""Requantizes a GGUF model to another weight type (what `ckls model quantize` runs).

Every key/value is copied (general.file_type and general.quantization_version are updated), 1-D tensors stay
as they are, and each matrix is dequantized and quantized again with ckls's quantizer. Which matrices get which
type follows llama.cpp's habit for its "mostly X" files:

* the output projection (output.weight, or token_embd.weight when the output is tied to it) is Q6_K for every
  target except q8_0 / f16 / bf16 / f32, which keep it at the target type;
* q4_k means llama.cpp's Q4_K_M: attn_v and ffn_down are Q6_K in the layers llama.cpp gives more bits to (the
  first and last eighth of the stack and every third layer between), everything else Q4_K;
* rows that are not a multiple of the block fall back as in ckls.runtime.gguf_write (Q6_K -> Q8_0,
  Q4_K -> Q4_0, then F16).
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from .gguf_write import FILE_TYPE, TYPE_IDS, TYPE_NAMES, quantize_matrix, storage_type, write_file

_SKIP_KEYS = {"general.architecture", "general.file_type", "general.quantization_version"}
_LAYER = re.compile(r"^blk\.(\d+)\.")


def _more_bits(i_layer: int, n_layer: int) -> bool:
    return i_layer < n_layer // 8 or i_layer >= 7 * n_layer // 8 or (i_layer - n_layer // 8) % 3 == 2


def target_type(name: str, n_cols: int, want: str, n_layer: int, tied: bool) -> int:
    """ggml type id the matrix `name` gets in a file requantized to `want`."""
    t = TYPE_IDS[want]
    is_output = name == "output.weight" or (tied and name == "token_embd.weight")
    if is_output and want in ("q4_0", "q4_k", "q6_k"):
        t = TYPE_IDS["q6_k"]
    elif want == "q4_k" and (name.endswith("attn_v.weight") or name.endswith("ffn_down.weight")):
        m = _LAYER.match(name)
        if m and _more_bits(int(m.group(1)), n_layer):
            t = TYPE_IDS["q6_k"]
    return storage_type(t, n_cols)


def dequantize(data: np.ndarray, ggml_type: int, shape: tuple[int, ...]) -> np.ndarray:
    """Float32 values of a tensor's raw data (numpy shape `shape`): ckls's dequantizer where it knows the
    type, gguf's otherwise (e.g. Q5_0 files from llama.cpp)."""
    if ggml_type in TYPE_NAMES and ggml_type != 0:
        from ckls.native import check, ffi, lib

        raw = np.ascontiguousarray(data).view(np.uint8)
        out = np.empty(int(np.prod(shape)), dtype=np.float32)
        check(lib.ckls_dequantize_row(ggml_type, ffi.from_buffer(raw), ffi.from_buffer("float[]", out), out.size))
        return out.reshape(shape)
    import gguf

    return np.asarray(gguf.quants.dequantize(data, gguf.GGMLQuantizationType(ggml_type)), np.float32).reshape(shape)


def copy_metadata(r, w, skip: frozenset | set = frozenset()) -> None:
    """Copies every key/value of a gguf.GGUFReader `r` to a gguf.GGUFWriter `w`, with its GGUF value type, except
    the header's, the architecture (the writer sets it), general.file_type, general.quantization_version and
    `skip`."""
    import gguf

    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name in _SKIP_KEYS or f.name in skip:
            continue
        vtype = f.types[0]
        sub = f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        if vtype == gguf.GGUFValueType.ARRAY and len(f.types) > 2:
            raise ValueError(f"key {f.name}: nested arrays are not supported")
        w.add_key_value(f.name, f.contents(), vtype, sub_type=sub)


def requantize(src, dst, type: str, progress: Callable[[int, int, str], None] | None = None) -> dict[str, str]:
    """Writes dst = src with its matrices in `type`; returns name -> type name. progress(i, n, name) per tensor."""
    import gguf

    want = str(type).lower()
    if want not in TYPE_IDS:
        raise ValueError(f"unsupported type {type!r}; expected one of {sorted(TYPE_IDS)}")
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    n_layer = int(r.fields[f"{arch}.block_count"].contents())
    names = {t.name for t in r.tensors}
    tied = "output.weight" not in names
    got: dict[str, str] = {}

    def build(w) -> None:
        copy_metadata(r, w)
        w.add_file_type(FILE_TYPE[want] if want != "q4_k" else 15)  # q4_k files are llama.cpp's Q4_K_M mix
        if want not in ("f32", "f16", "bf16"):
            w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        n = len(r.tensors)
        for i, t in enumerate(r.tensors):
            shape = tuple(int(s) for s in reversed(t.shape))
            src_type = int(t.tensor_type)
            if len(shape) == 1:
                x = dequantize(t.data, src_type, shape)
                w.add_tensor(t.name, np.ascontiguousarray(x, dtype=np.float32))
                got[t.name] = "f32"
            elif len(shape) == 2:
                tt = target_type(t.name, shape[1], want, n_layer, tied)
                x = dequantize(t.data, src_type, shape)
                got[t.name] = TYPE_NAMES[tt]
                if tt == 0:
                    w.add_tensor(t.name, np.ascontiguousarray(x))
                else:
                    w.add_tensor(t.name, quantize_matrix(x, tt), raw_dtype=gguf.GGMLQuantizationType(tt))
            else:
                raise ValueError(f"tensor {t.name} has {len(shape)} dimensions; only vectors and matrices")
            if progress:
                progress(i + 1, n, t.name)

    write_file(dst, arch, build)  # src == dst works too: the rename comes after the last read of the mapping
    return got
