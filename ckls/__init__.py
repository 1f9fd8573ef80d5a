"""ckls — code-completion language server with its own quantized SIMD CPU model runtime."""

__version__ = "0.1.0"
