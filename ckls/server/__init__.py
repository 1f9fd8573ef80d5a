"""The ckls language server (pygls 2, stdio): inline completion, completion fallback, commands, settings."""
from ckls.server.handlers import create_server, main

__all__ = ["create_server", "main"]
