"""Definitions of the index's files: ckls.syntax's, with the file's language from its extension."""
from __future__ import annotations

from ckls import syntax
from ckls.syntax import Def, definitions as extract, extract_definitions as snippets  # noqa: F401  (the index's API)


def language_of(path: str) -> str | None:
    return syntax.language_of(None, path)
