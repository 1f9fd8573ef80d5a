"""Random LoRA adapters for a model file, in file form (LoraWeights), for the adapter and merge tests."""
from __future__ import annotations

import numpy as np

from ckls.runtime.adapter_gguf import LoraWeights
from ckls.runtime.gguf_file import read_gguf
from ckls.runtime.lora import TARGET_ORDER


def random_adapter(model_path, rank, alpha, seed, targets=TARGET_ORDER, layers=None, meta=None) -> LoraWeights:
    """B nonzero (a trained adapter, not a fresh one) so the adapter changes the logits visibly. layers: all when
    None; meta: extra keys for the file."""
    f = read_gguf(model_path)
    rng = np.random.default_rng(seed)
    pairs = {}
    n_layer = f.get(f"{f.get('general.architecture')}.block_count")
    for i in layers if layers is not None else range(n_layer):
        for t in targets:
            name = f"blk.{i}.{t}.weight"
            n_in, n_out = f.tensors[name].ne[:2]
            a = (rng.standard_normal((rank, n_in)) / np.sqrt(n_in)).astype(np.float32)
            b = (rng.standard_normal((n_out, rank)) * 0.3).astype(np.float32)
            pairs[name] = (a, b)
    return LoraWeights(f.get("general.architecture"), alpha, pairs, dict(meta or {}))
