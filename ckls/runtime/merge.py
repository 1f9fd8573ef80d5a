"""Merging LoRA adapters into their base model: one GGUF that any llama.cpp user runs without `--lora`
(what `ckls model merge` runs).

For every base matrix W [n_out, n_in] that an adapter adapts, the merged file holds

    W' = W + sum_i  weight_i * scale_i * B_i . A_i,     scale_i = alpha_i / rank_i   (1 when alpha_i is 0 or absent)

which is what serving the base with the adapter(s) attached computes (ckls.runtime.lora and native/src/lora.c:
y = W.x + (alpha / rank) * B.(A.x); llama.cpp's `--lora-scaled FILE S` multiplies that by S and reads a missing
alpha as scale 1). W is dequantized to float32, the products are summed in float64, and W' is quantized again:
to W's own type by default, or with `type` every matrix to that type by `ckls model quantize`'s rule
(ckls.runtime.quantize.target_type). Every other tensor is copied byte for byte (or converted to `type`), every
key/value is copied with its GGUF type; `ckls.merge.adapters` records what was merged. The file is written by the
one GGUF writer, atomically.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .adapter_gguf import LoraWeights, check_against_base, read_adapter
from .gguf_file import ModelError, read_gguf
from .gguf_write import TYPE_IDS, TYPE_NAMES, quantize_matrix, storage_type, write_file
from .quantize import FILE_TYPE, copy_metadata, dequantize, target_type

PROVENANCE_KEY = "ckls.merge.adapters"


def adapter_scale(w: LoraWeights, weight: float = 1.0) -> float:
    """The factor of B.A in the merged matrix: weight * alpha / rank, and weight alone when the file's alpha is 0
    or absent (llama.cpp's rule)."""
    return float(weight) * (w.alpha / w.rank if w.alpha else 1.0)


def parse_adapter_arg(text: str) -> tuple[str, float]:
    """'PATH' or 'PATH:WEIGHT' -> (path, weight). A path that itself holds ':' needs an explicit weight
    ('dir:x/a.gguf:1'). Raises ValueError with a one-line reason."""
    path, sep, tail = text.rpartition(":")
    if not sep:
        return text, 1.0
    if not path:
        raise ValueError(f"{text!r} has no adapter path before ':'")
    try:
        weight = float(tail)
    except ValueError:
        raise ValueError(f"bad weight {tail!r} in {text!r} (PATH[:WEIGHT], the weight a number such as 0.5)") \
            from None
    if not math.isfinite(weight):
        raise ValueError(f"bad weight {tail!r} in {text!r}: it must be a finite number")
    return path, weight


@dataclass
class MergeResult:
    types: dict[str, str] = field(default_factory=dict)  # tensor name -> type name in the merged file
    merged: list[str] = field(default_factory=list)      # base matrices that received an adapter's product
    max_delta: float = 0.0                                # largest |W' - W| before requantization


def _load_adapters(base: str, adapters: Sequence[tuple[str | os.PathLike, float]]) -> list[tuple[LoraWeights, float]]:
    out = []
    for path, weight in adapters:
        if not math.isfinite(float(weight)):
            raise ModelError(f"{path}: bad weight {weight!r}: it must be a finite number")
        w = read_adapter(path)
        if not w.pairs:
            raise ModelError(f"{path}: the adapter holds no tensors")
        if "token_embd.weight" in w.pairs:  # llama.cpp stores A/B of the embedding flipped: not a plain B.A
            raise ModelError(f"{path}: adapters of token_embd are not supported")
        try:
            check_against_base(w, base)
        except ModelError as exc:
            raise ModelError(f"{os.fspath(path)} does not fit {os.fspath(base)}: {exc}") from None
        out.append((w, float(weight)))
    return out


def merge(base: str | os.PathLike, adapters: Sequence[tuple[str | os.PathLike, float]], out: str | os.PathLike,
          type: str | None = None, progress: Callable[[int, int, str], None] | None = None) -> MergeResult:
    """Writes `out` = `base` with each (adapter path, weight) folded in (module doc). type: None keeps each
    matrix's type; else one of gguf_write.TYPE_IDS. progress(i, n, name) per tensor."""
    import gguf

    base = os.fspath(base)
    if not adapters:
        raise ValueError("merge needs at least one adapter")
    want = None if type is None else str(type).lower()
    if want is not None and want not in TYPE_IDS:
        raise ValueError(f"unsupported type {type!r}; expected one of {sorted(TYPE_IDS)}")
    f = read_gguf(base)  # validates the header; refuses what is not a GGUF
    if f.get("general.type", "model") != "model":
        raise ModelError(f"{base} is a {f.get('general.type')!r} file, not a model")
    loaded = _load_adapters(base, adapters)
    # base matrix -> [(A, B, factor)]
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, float]]] = {}
    for w, weight in loaded:
        s = adapter_scale(w, weight)
        for name, (a, b) in w.pairs.items():
            parts.setdefault(name, []).append((a, b, s))

    r = gguf.GGUFReader(base)
    arch = r.fields["general.architecture"].contents()
    n_layer = int(r.fields[f"{arch}.block_count"].contents())
    tied = "output.weight" not in {t.name for t in r.tensors}
    res = MergeResult()
    record = ", ".join(f"{os.path.basename(os.fspath(p))}:{float(wt):g}" for p, wt in adapters)

    def add_raw(wr, t) -> None:
        tt = int(t.tensor_type)
        if tt in (0, 1):  # the reader gives F32 / F16 as typed arrays, every other type as bytes
            wr.add_tensor(t.name, np.ascontiguousarray(t.data))
        else:
            wr.add_tensor(t.name, np.ascontiguousarray(t.data), raw_dtype=gguf.GGMLQuantizationType(tt))

    def build(wr) -> None:
        copy_metadata(r, wr, skip={PROVENANCE_KEY})
        if want is None:  # the base's own type keys
            for k in ("general.file_type", "general.quantization_version"):
                if k in r.fields:
                    fl = r.fields[k]
                    wr.add_key_value(k, fl.contents(), fl.types[0])
        else:
            wr.add_file_type(FILE_TYPE[want] if want != "q4_k" else 15)  # as ckls model quantize
            if want not in ("f32", "f16", "bf16"):
                wr.add_quantization_version(gguf.GGML_QUANT_VERSION)
        wr.add_string(PROVENANCE_KEY, record)
        n = len(r.tensors)
        for i, t in enumerate(r.tensors):
            shape = tuple(int(s) for s in reversed(t.shape))
            src = int(t.tensor_type)
            if len(shape) != 2:
                add_raw(wr, t)
                res.types[t.name] = TYPE_NAMES.get(src, str(src))
            else:
                if want is None:
                    if src not in TYPE_NAMES:
                        raise ModelError(f"{t.name} is of ggml type {src}, which ckls does not write: pass --type")
                    tt = storage_type(src, shape[1])
                else:
                    tt = target_type(t.name, shape[1], want, n_layer, tied)
                if t.name not in parts and tt == src:
                    add_raw(wr, t)
                else:
                    x = dequantize(t.data, src, shape)
                    if t.name in parts:
                        delta = np.zeros(shape, dtype=np.float64)
                        for a, b, s in parts[t.name]:
                            delta += s * (b.astype(np.float64) @ a.astype(np.float64))
                        res.max_delta = max(res.max_delta, float(np.abs(delta).max()))
                        x = (x.astype(np.float64) + delta).astype(np.float32)
                        res.merged.append(t.name)
                    if tt == 0:
                        wr.add_tensor(t.name, np.ascontiguousarray(x, dtype=np.float32))
                    else:
                        wr.add_tensor(t.name, quantize_matrix(x, tt), raw_dtype=gguf.GGMLQuantizationType(tt))
                res.types[t.name] = TYPE_NAMES[tt]
            if progress:
                progress(i + 1, n, t.name)

    write_file(out, arch, build)  # out == base works: the rename comes after the last read of the mapping
    return res
