"""The model shipped with ckls (see DATACARD.md beside it)."""
import os

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.gguf")


def default_model_path() -> str | None:
    """Path of the embedded default model, or None when this installation has none."""
    return DEFAULT_MODEL if os.path.exists(DEFAULT_MODEL) else None
