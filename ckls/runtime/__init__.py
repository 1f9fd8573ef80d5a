"""The model runtime: GGUF files, the native forward with its KV cache, tokenizer, sampling.

The package itself loads nothing: its names are looked up on first use (PEP 562), so a module that needs no
native build (the GGUF reader and writer, which the GPU factory uses) imports without one.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ckls.runtime.gguf_file import ModelError, read_gguf
    from ckls.runtime.model import CancelFlag, Cancelled, Model, load_model

# public name -> the module that defines it
_WHERE = {
    "ModelError": "ckls.runtime.gguf_file",
    "read_gguf": "ckls.runtime.gguf_file",
    "CancelFlag": "ckls.runtime.model",
    "Cancelled": "ckls.runtime.model",
    "Model": "ckls.runtime.model",
    "load_model": "ckls.runtime.model",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
