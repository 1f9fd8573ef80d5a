"""The model runtime: GGUF files, the native forward with its KV cache, tokenizer, sampling."""
from ckls.runtime.gguf_file import ModelError, read_gguf
from ckls.runtime.model import CancelFlag, Cancelled, Model, load_model

__all__ = ["CancelFlag", "Cancelled", "Model", "ModelError", "load_model", "read_gguf"]
