"""ckls model runtime: GGUF models, tokenizer, KV cache, sampling."""
