"""Which tree-sitter grammar reads which document, and what its scopes and definitions look like.
.cu/.cuh use tree-sitter-cuda; any other language is completed as plain text (no syntax, same pipeline)."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from ckls.fim.corpus import EXTENSIONS

GRAMMARS = {"python": "tree_sitter_python", "c": "tree_sitter_c", "cpp": "tree_sitter_cpp",
            "cuda": "tree_sitter_cuda"}
LANGUAGE_IDS = {"python": "python", "c": "c", "cpp": "cpp", "cuda": "cuda", "cuda-cpp": "cuda", "objective-c": "c"}


@dataclass(frozen=True)
class Syntax:
    name: str
    scopes: frozenset          # node types that open a named scope (function, class, struct...)
    definitions: frozenset     # node types worth showing as a definition elsewhere
    braces: bool               # blocks end with "}" (else by indentation)


_C_DEFS = frozenset({"function_definition", "struct_specifier", "union_specifier", "enum_specifier",
                     "type_definition", "preproc_def", "preproc_function_def", "declaration"})
_CPP_DEFS = _C_DEFS | {"class_specifier", "template_declaration", "namespace_definition", "alias_declaration"}
SYNTAX = {
    "python": Syntax("python", frozenset({"function_definition", "class_definition"}),
                     frozenset({"function_definition", "class_definition", "decorated_definition"}), False),
    "c": Syntax("c", frozenset({"function_definition", "struct_specifier", "union_specifier", "enum_specifier"}),
                _C_DEFS, True),
    "cpp": Syntax("cpp", frozenset({"function_definition", "struct_specifier", "class_specifier",
                                    "namespace_definition", "enum_specifier", "lambda_expression"}), _CPP_DEFS, True),
}
SYNTAX["cuda"] = Syntax("cuda", SYNTAX["cpp"].scopes, _CPP_DEFS, True)
BRACE_LANGUAGE_IDS = {"c", "cpp", "cuda", "cuda-cpp", "java", "javascript", "typescript", "javascriptreact",
                      "typescriptreact", "rust", "go", "csharp", "kotlin", "scala", "swift", "php", "dart"}

_lock = threading.Lock()
_parsers: dict[str, object] = {}


def language_of(language_id: str | None, uri: str = "") -> str | None:
    """Grammar name for a document, from its LSP languageId or else its file extension."""
    if language_id and language_id in LANGUAGE_IDS:
        return LANGUAGE_IDS[language_id]
    return EXTENSIONS.get(os.path.splitext(uri)[1].lower())


def uses_braces(language_id: str | None, uri: str = "") -> bool:
    lang = language_of(language_id, uri)
    if lang is not None:
        return SYNTAX[lang].braces
    return (language_id or "") in BRACE_LANGUAGE_IDS


def parser_for(lang: str):
    """A tree-sitter parser per thread and grammar (parsers are not thread-safe); None if unavailable."""
    key = f"{threading.get_ident()}:{lang}"
    p = _parsers.get(key)
    if p is not None:
        return p
    with _lock:
        try:
            import importlib

            import tree_sitter

            mod = importlib.import_module(GRAMMARS[lang])
            p = tree_sitter.Parser(tree_sitter.Language(mod.language()))
        except Exception:  # grammar missing or built for another ABI: fall back to plain text
            p = False
        _parsers[key] = p
    return p or None
