"""ckls.index: the workspace's repository index, shared by the server's prompt, the tuner and the eval.

  text.py         line windows and identifier terms (the query for a cursor too)
  definitions.py  tree-sitter definitions: name, kind, line, signature + body head
  store.py        the SQLite database in the state folder: schema, checks, a corrupt file set aside
  index.py        Index: build (paced, resumable), update/remove one file, search (BM25), definitions

The repository's token stream (for a token-level memory) is a FileHook (index.py) kept in the same database and
transactions; it is not written yet. See docs/index.md.
"""
from .index import BuildReport, Definition, FileHook, Index, Window

__all__ = ["Index", "Window", "Definition", "BuildReport", "FileHook"]
