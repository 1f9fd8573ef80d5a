"""LoRA adapters as GGUF files that both ckls and llama.cpp load.

Layout (llama.cpp's llama-adapter.cpp and convert_lora_to_gguf.py): `general.type = "adapter"`,
`general.architecture` = the base model's, `adapter.type = "lora"`, `adapter.lora.alpha` (f32); for every adapted
base tensor `<base>.weight` two F32 tensors `<base>.weight.lora_a` with ne [n_in, r] (numpy [r, n_in]) and
`<base>.weight.lora_b` with ne [r, n_out] (numpy [n_out, r]). The forward adds (alpha / r) · B (A x).
B's rows follow the base tensor's rows as stored in the GGUF (for llama, Q/K are already in the permuted order).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ckls.runtime.gguf_file import ModelError, read_gguf
from ckls.runtime.gguf_write import add_kv, write_file


@dataclass
class LoraWeights:
    """An adapter in file form: base tensor name -> (A [r, n_in], B [n_out, r]), all of one rank."""

    arch: str
    alpha: float
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # extra string/number keys kept in the file (ckls.tune.*)

    @property
    def rank(self) -> int:
        return next(iter(self.pairs.values()))[0].shape[0] if self.pairs else 0

    @property
    def scale(self) -> float:
        return self.alpha / self.rank if self.rank else 0.0


def check_against_base(w: LoraWeights, base_path: str | os.PathLike) -> None:
    """Raises ModelError unless every pair names a 2-D base tensor of matching shape and the architectures agree."""
    base = read_gguf(base_path)
    arch = base.get("general.architecture")
    if arch != w.arch:
        raise ModelError(f"adapter is for {w.arch!r}, the model is {arch!r}")
    for name, (a, b) in w.pairs.items():
        t = base.tensors.get(name)
        if t is None or len(t.ne) < 2:
            raise ModelError(f"adapter tensor {name!r} has no matrix in the base model")
        n_in, n_out = t.ne[0], t.ne[1]
        if a.shape != (w.rank, n_in) or b.shape != (n_out, w.rank):
            raise ModelError(f"adapter {name!r}: A {a.shape} / B {b.shape} do not fit the base [{n_out}, {n_in}] "
                             f"at rank {w.rank}")


def write_adapter(path: str | os.PathLike, w: LoraWeights) -> None:
    """Writes the adapter with the one GGUF writer (ckls.runtime.gguf_write), atomically: a reader sees the old
    file or the new."""
    import gguf

    if not w.pairs:
        raise ValueError("an adapter needs at least one tensor pair")
    r = w.rank
    for name, (a, b) in w.pairs.items():
        if not name.endswith(".weight"):
            raise ValueError(f"adapter pair {name!r} should name a base '.weight' tensor")
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != r or b.shape[1] != r:
            raise ValueError(f"adapter pair {name!r}: A {a.shape}, B {b.shape} are not of rank {r}")

    def build(wr) -> None:
        wr.add_type(gguf.GGUFType.ADAPTER)
        wr.add_string(gguf.Keys.Adapter.TYPE, "lora")
        wr.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(w.alpha))
        for k, v in w.meta.items():
            add_kv(wr, k, v if isinstance(v, (bool, int, float, np.integer, np.floating)) else str(v))
        for name in sorted(w.pairs, key=_tensor_order):
            a, b = w.pairs[name]
            wr.add_tensor(name + ".lora_a", np.ascontiguousarray(a, dtype=np.float32))
            wr.add_tensor(name + ".lora_b", np.ascontiguousarray(b, dtype=np.float32))

    write_file(path, w.arch, build)


def read_adapter(path: str | os.PathLike) -> LoraWeights:
    """Reads a LoRA GGUF (ours or converted by llama.cpp's script when its tensors are F32/F16)."""
    f = read_gguf(path)
    if f.get("general.type") != "adapter":
        raise ModelError(f"{path}: general.type is {f.get('general.type')!r}, not 'adapter'")
    if f.get("adapter.type") != "lora":
        raise ModelError(f"{path}: adapter.type is {f.get('adapter.type')!r}, not 'lora'")
    arch = f.get("general.architecture")
    alpha = f.get("adapter.lora.alpha", 0.0)
    halves: dict[str, dict[str, np.ndarray]] = {}
    for name, t in f.tensors.items():
        for part in ("lora_a", "lora_b"):
            if name.endswith("." + part):
                if t.type not in (0, 1) or len(t.ne) != 2:
                    raise ModelError(f"{path}: {name} should be a 2-D F32/F16 tensor")
                dt = np.float32 if t.type == 0 else np.float16
                x = np.frombuffer(t.data, dtype=dt, count=t.ne[0] * t.ne[1]).reshape(t.ne[1], t.ne[0])
                halves.setdefault(name[: -len(part) - 1], {})[part] = x.astype(np.float32)
                break
        else:
            if not name.endswith("_norm.weight"):
                raise ModelError(f"{path}: unexpected tensor {name!r} in a LoRA adapter")
    pairs = {}
    for base, d in halves.items():
        if set(d) != {"lora_a", "lora_b"}:
            raise ModelError(f"{path}: {base} lacks its {'lora_b' if 'lora_a' in d else 'lora_a'}")
        pairs[base] = (d["lora_a"], d["lora_b"])
    ranks = {a.shape[0] for a, _ in pairs.values()} | {b.shape[1] for _, b in pairs.values()}
    if len(ranks) > 1:
        raise ModelError(f"{path}: tensors of different ranks {sorted(ranks)}")
    meta = {k: v for k, v in f.metadata.items() if k.startswith("ckls.")}
    return LoraWeights(arch, float(alpha), pairs, meta)


def _tensor_order(name: str):
    parts = name.split(".")
    return (int(parts[1]), parts[2]) if len(parts) > 2 and parts[0] == "blk" and parts[1].isdigit() else (-1, name)
