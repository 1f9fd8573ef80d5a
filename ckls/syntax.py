"""Syntax, shared by completion and the repository index: which tree-sitter grammar reads which document, what
its scopes and definitions look like, and the definitions of a file (name, kind, line, signature and body head).
.cu/.cuh use tree-sitter-cuda; any other language is completed as plain text (no syntax, same pipeline)."""
from __future__ import annotations

import os
import re
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


# ---- definitions ------------------------------------------------------------------------------------------------
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NO_BODY = ("struct_specifier", "enum_specifier", "type_definition")  # their body is what they define
_CONTAINERS = ("translation_unit", "module", "declaration_list", "linkage_specification", "preproc_ifdef",
               "preproc_if")
MAX_PARSE_CHARS = 1 << 20  # larger files (often generated) are not parsed: a parse costs seconds


@dataclass(frozen=True)
class Def:
    name: str
    kind: str   # tree-sitter node type
    line: int   # 0-based first line of the definition (decorators included)
    text: str   # signature, then up to body_lines lines of the body; "..." when cut


def name_of(node) -> str | None:
    """The identifier a definition or scope node declares (C declarators unwrapped)."""
    n = node.child_by_field_name("name")
    if n is None:
        d = node.child_by_field_name("declarator")
        while d is not None and d.child_by_field_name("declarator") is not None:
            d = d.child_by_field_name("declarator")
        n = d
    if n is None or n.text is None:
        return None
    m = _IDENT.search(n.text.decode("utf-8", "replace"))
    return m.group(0) if m else None


def definitions(lang: str | None, text: str, max_lines: int = 6, body_lines: int = 0) -> list[Def]:
    """A file's definitions in source order: top level, class members, namespaces. A definition's text is its
    signature (cut to max_lines) and then body_lines lines of its body."""
    if lang is None or len(text) > MAX_PARSE_CHARS:
        return []
    parser = parser_for(lang)
    if parser is None:
        return []
    src = text.encode("utf-8", "surrogatepass")
    kinds = SYNTAX[lang].definitions
    out: list[Def] = []

    def visit(node, depth: int) -> None:
        for ch in node.children:
            t = ch.type
            if t in kinds:
                target = ch
                if t in ("decorated_definition", "template_declaration"):
                    target = ch.child_by_field_name("definition") or (ch.named_children[-1] if ch.named_children
                                                                      else ch)
                name = name_of(target)
                if name:
                    body = target.child_by_field_name("body")
                    has_body = body is not None and t not in _NO_BODY
                    end = body.start_byte if has_body else ch.end_byte
                    snippet = src[ch.start_byte:end].decode("utf-8", "replace").rstrip()
                    lines = snippet.split("\n")
                    if len(lines) > max_lines:
                        snippet = "\n".join(lines[:max_lines]) + "\n..."
                    elif has_body and body_lines > 0:
                        whole = src[ch.start_byte:ch.end_byte].decode("utf-8", "replace").rstrip().split("\n")
                        keep = len(lines) + body_lines
                        snippet = "\n".join(whole[:keep]) + ("\n..." if len(whole) > keep else "")
                    out.append(Def(name, t, ch.start_point[0], snippet))
                if t in ("class_definition", "class_specifier", "namespace_definition") and depth < 2:
                    b = target.child_by_field_name("body")
                    if b is not None:
                        visit(b, depth + 1)
            elif t in _CONTAINERS and depth < 3:
                visit(ch, depth + 1)

    visit(parser.parse(src).root_node, 0)
    return out


def extract_definitions(lang: str | None, text: str, max_lines: int = 6) -> dict[str, str]:
    """name -> a short snippet (signature, or the whole definition when small); the first definition of a name
    wins."""
    out: dict[str, str] = {}
    for d in definitions(lang, text, max_lines):
        out.setdefault(d.name, d.text)
    return out

