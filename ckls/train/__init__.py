"""Model factory: corpus → tokenizer → FIM samples → llama-style model (torch, torchrun) → GGUF.

Optional extra `ckls[train]`; nothing outside this package imports torch.
"""
