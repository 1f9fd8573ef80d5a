"""Model runtime: GGUF loading, tokenizer, KV cache, sampling, adapters."""
