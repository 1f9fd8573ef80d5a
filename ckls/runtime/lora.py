"""LoRA adapters and training on the native core: numpy views on the adapter's A/B (and their gradients and
AdamW moments), hot-swapping an adapter into a loaded Model, and `LoraTrainer`, one C call per training step.

Layout (llama.cpp's LoRA GGUF): per layer and adapted matrix W [n_out x n_in], A float32 [rank x n_in] (GGUF
`blk.N.<name>.weight.lora_a`, ggml ne {n_in, rank}) and B float32 [n_out x rank] (`.lora_b`, ne {rank, n_out});
y = W.x + (alpha / rank) * B.(A.x). llama.cpp reads a missing or zero `adapter.lora.alpha` as scale 1: pass
alpha = rank for such files."""
from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

from ckls.native import NativeError, check, ffi, last_error, lib
from ckls.runtime.handle import Owner

# GGUF base names of the matrices an adapter may touch, in the C library's one order (ckls.h), with their C flags
TARGET_ORDER: tuple[str, ...] = tuple(ffi.string(lib.ckls_lora_target_name(i)).decode()
                                      for i in range(lib.CKLS_LORA_N_TARGETS))
TARGETS = {name: 1 << i for i, name in enumerate(TARGET_ORDER)}
BUFFERS = {"params": lib.CKLS_LORA_PARAMS, "grads": lib.CKLS_LORA_GRADS, "adam_m": lib.CKLS_LORA_ADAM_M,
           "adam_v": lib.CKLS_LORA_ADAM_V}


def _c_hparams(hp: dict):
    c = ffi.new("ckls_hparams *")
    for k in ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_rot"):
        setattr(c, k, hp[k])
    c.rms_eps = hp["rms_eps"]
    c.rope_base = hp["rope_base"]
    return c


def target_shape(hp: dict, target: str) -> tuple[int, int]:
    """(n_out, n_in) of one adaptable matrix."""
    d, ff = hp["n_embd"], hp["n_ff"]
    kv = hp["n_head_kv"] * (d // hp["n_head"])
    return {"attn_q": (d, d), "attn_k": (kv, d), "attn_v": (kv, d), "attn_output": (d, d),
            "ffn_gate": (ff, d), "ffn_up": (ff, d), "ffn_down": (d, ff)}[target]


class LoraAdapter(Owner):
    """The adapter's parameters live in C (float32); `a()`, `b()` and the buffers are numpy views on them, so
    filling or saving them is plain numpy. New adapters start as PEFT's do: A kaiming-uniform, B zero."""

    _free = staticmethod(lib.ckls_lora_free)

    def __init__(self, hparams: dict, rank: int, alpha: float, targets: Iterable[str] = tuple(TARGETS),
                 seed: int = 0):
        self.hparams = dict(hparams)
        self.targets = tuple(targets)
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown or not self.targets:
            raise ValueError(f"unknown LoRA targets {unknown} (choose from {', '.join(TARGETS)})")
        mask = 0
        for t in self.targets:
            mask |= TARGETS[t]
        ptr = lib.ckls_lora_create(_c_hparams(self.hparams), int(rank), float(alpha), mask, seed & (2**64 - 1))
        if ptr == ffi.NULL:
            raise NativeError(lib.CKLS_EINVAL, last_error())
        self._ptr = ptr
        self.rank = int(rank)
        self.n_layer = self.hparams["n_layer"]
        n = lib.ckls_lora_n_params(ptr)
        self._bufs = {name: np.frombuffer(ffi.buffer(lib.ckls_lora_buffer(ptr, which), 4 * n), dtype=np.float32)
                      for name, which in BUFFERS.items()}

    @classmethod
    def for_model(cls, model, rank: int = 16, alpha: float = 32.0, targets: Iterable[str] = tuple(TARGETS),
                  seed: int = 0) -> "LoraAdapter":
        return cls(model.hparams, rank, alpha, targets, seed)

    @classmethod
    def from_weights(cls, model, w) -> "LoraAdapter":
        """A runtime adapter for `model` holding an adapter file's A/B (ckls.runtime.adapter_gguf.LoraWeights)."""
        if w.arch != model.arch:
            raise ValueError(f"adapter is for {w.arch!r}, the model is {model.arch!r}")
        targets = tuple(sorted({name.split(".")[2] for name in w.pairs}, key=TARGET_ORDER.index))
        adapter = cls.for_model(model, rank=w.rank, alpha=w.alpha, targets=targets)
        adapter.load_weights(w)
        return adapter

    @classmethod
    def from_gguf(cls, model, path: str | os.PathLike) -> "LoraAdapter":
        """An adapter from a LoRA GGUF (ours or llama.cpp's) for `model`, ready for model.set_adapter (as
        llama.cpp's llama_adapter_lora_init)."""
        from ckls.runtime.adapter_gguf import read_adapter

        return cls.from_weights(model, read_adapter(path))

    def load_weights(self, w) -> None:
        """Copies saved A/B (LoraWeights) into this adapter of the same targets and rank."""
        want = {f"blk.{layer}.{t}.weight" for layer, t in self.names()}
        if set(w.pairs) != want:
            raise ValueError("the saved adapter adapts other matrices than this one")
        for name, (a, b) in w.pairs.items():
            _, layer, t, _ = name.split(".")
            va, vb = self.a(int(layer), t), self.b(int(layer), t)
            if va.shape != a.shape or vb.shape != b.shape:
                raise ValueError(f"{name}: saved shapes {a.shape}/{b.shape} differ from {va.shape}/{vb.shape}")
            va[...] = a
            vb[...] = b
        self.alpha = w.alpha

    def to_weights(self, arch: str, meta: dict | None = None):
        """A copy of the parameters in file form (LoraWeights) for ckls.runtime.adapter_gguf.write_adapter."""
        from ckls.runtime.adapter_gguf import LoraWeights

        pairs = {f"blk.{layer}.{t}.weight": (self.a(layer, t).copy(), self.b(layer, t).copy())
                 for layer, t in self.names()}
        return LoraWeights(arch, float(self.alpha), pairs, dict(meta or {}))

    @property
    def ptr(self):
        if self._ptr is None:
            raise RuntimeError("adapter is closed")
        return self._ptr

    @property
    def alpha(self) -> float:
        return float(lib.ckls_lora_scale(self.ptr)) * self.rank

    @alpha.setter
    def alpha(self, value: float) -> None:
        check(lib.ckls_lora_set_alpha(self.ptr, float(value)))

    @property
    def scale(self) -> float:
        return float(lib.ckls_lora_scale(self.ptr))

    @property
    def n_params(self) -> int:
        return int(lib.ckls_lora_n_params(self.ptr))

    def buffer(self, name: str = "params") -> np.ndarray:
        """Flat float32 view of one buffer: params, grads, adam_m or adam_v."""
        return self._bufs[name]

    def _view(self, layer: int, target: str, is_b: bool, buf: str) -> np.ndarray:
        if target not in self.targets or not 0 <= layer < self.n_layer:
            raise KeyError(f"the adapter has no {target} in layer {layer}")
        off = lib.ckls_lora_offset(self.ptr, layer, TARGETS[target], 1 if is_b else 0)
        n_out, n_in = target_shape(self.hparams, target)
        shape = (n_out, self.rank) if is_b else (self.rank, n_in)
        return self._bufs[buf][off:off + shape[0] * shape[1]].reshape(shape)

    def a(self, layer: int, target: str, buf: str = "params") -> np.ndarray:
        """A [rank x n_in] (a writable view)."""
        return self._view(layer, target, False, buf)

    def b(self, layer: int, target: str, buf: str = "params") -> np.ndarray:
        """B [n_out x rank] (a writable view)."""
        return self._view(layer, target, True, buf)

    def names(self) -> list[tuple[int, str]]:
        return [(layer, t) for layer in range(self.n_layer) for t in self.targets]

    def tensors(self, buf: str = "params") -> dict[str, np.ndarray]:
        """GGUF tensor name -> view, e.g. 'blk.0.attn_q.weight.lora_a'."""
        out = {}
        for layer, t in self.names():
            out[f"blk.{layer}.{t}.weight.lora_a"] = self.a(layer, t, buf)
            out[f"blk.{layer}.{t}.weight.lora_b"] = self.b(layer, t, buf)
        return out

    @property
    def adam_step(self) -> int:
        return int(lib.ckls_lora_adam_step(self.ptr))

    @adam_step.setter
    def adam_step(self, step: int) -> None:
        check(lib.ckls_lora_set_adam_step(self.ptr, int(step)))

    def zero_grad(self) -> None:
        check(lib.ckls_lora_zero_grad(self.ptr))

    def close(self) -> None:
        self._bufs = {}  # numpy views on the C memory go first
        super().close()


class LoraTrainer(Owner):
    """LoRA training of `adapter` on `model` (its weights frozen, as loaded): step() runs forward + backward over
    one sequence and accumulates gradients; optimizer_step() clips, applies AdamW and zeroes them. The model and
    adapter must stay open while the trainer lives. exact=False runs the forward in the server's arithmetic
    (quantized activations through the integer kernels: faster; ckls_train_set_exact)."""

    _free = staticmethod(lib.ckls_train_free)

    def __init__(self, model, adapter: LoraAdapter, max_tokens: int, lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 clip: float = 1.0, exact: bool = True):
        self.model, self.adapter = model, adapter
        self.max_tokens = int(max_tokens)
        self.lr, self.betas, self.eps, self.weight_decay, self.clip = lr, betas, eps, weight_decay, clip
        ptr = lib.ckls_train_create(model._ptr, adapter.ptr, self.max_tokens)
        if ptr == ffi.NULL:
            raise NativeError(lib.CKLS_EINVAL, last_error())
        self._ptr = ptr
        check(lib.ckls_train_set_exact(ptr, int(exact)))
        self._loss = ffi.new("float *")
        self._norm = ffi.new("float *")

    def step(self, tokens: Sequence[int], targets: Sequence[int] | None = None, grad_scale: float = 1.0,
             cancel=None) -> float:
        """Mean cross-entropy of predicting targets[i] at position i (default: the next token; negative targets
        are ignored). Gradients accumulate (times grad_scale). Raises Cancelled, gradients untouched, when the
        flag is raised."""
        from ckls.runtime.model import Cancelled

        toks = np.ascontiguousarray(tokens, dtype=np.int32)
        if targets is None:
            tg = np.empty_like(toks)
            tg[:-1], tg[-1:] = toks[1:], -1
        else:
            tg = np.ascontiguousarray(targets, dtype=np.int32)
        if tg.shape != toks.shape:
            raise ValueError("tokens and targets differ in length")
        rc = lib.ckls_train_step(self._ptr, ffi.from_buffer("int32_t[]", toks), ffi.from_buffer("int32_t[]", tg),
                                 len(toks), float(grad_scale), cancel.ptr if cancel else ffi.NULL, self._loss)
        if rc == lib.CKLS_ECANCELLED:
            raise Cancelled()
        check(rc)
        return float(self._loss[0])

    def optimizer_step(self, lr: float | None = None) -> float:
        """Clip to self.clip (<= 0: off), one AdamW step, zero the gradients; returns the norm before clipping."""
        rc = lib.ckls_lora_adamw(self.adapter.ptr, float(self.lr if lr is None else lr), float(self.betas[0]),
                                 float(self.betas[1]), float(self.eps), float(self.weight_decay),
                                 float(self.clip or 0.0), self._norm)
        check(rc)
        self.adapter.zero_grad()
        self._params_changed()
        return float(self._norm[0])

    def _params_changed(self) -> None:
        # keys/values cached by a model evaluating with this adapter came from the old parameters
        if getattr(self.model, "adapter", None) is self.adapter:
            self.model.forget()

    def state(self) -> dict:
        """Copies of everything a checkpoint needs to resume (parameters, moments, step)."""
        a = self.adapter
        return {"params": a.buffer("params").copy(), "adam_m": a.buffer("adam_m").copy(),
                "adam_v": a.buffer("adam_v").copy(), "adam_step": a.adam_step}

    def load_state(self, state: dict) -> None:
        a = self.adapter
        for k in ("params", "adam_m", "adam_v"):
            src = np.asarray(state[k], dtype=np.float32)
            if src.shape != a.buffer(k).shape:
                raise ValueError(f"checkpoint {k} has {src.size} values, the adapter {a.n_params}")
            a.buffer(k)[:] = src
        a.adam_step = int(state["adam_step"])
        a.zero_grad()
        self._params_changed()

