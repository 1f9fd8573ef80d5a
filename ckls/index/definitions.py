"""Definitions in a source file (tree-sitter): name, kind, line, and the signature with the first lines of the body.

The rules are those of ckls.completion.context.extract_definitions (the same node types, names and nesting: top
level, class members, namespaces), so with body_lines=0 `snippets()` returns exactly what that function returns
(tests/test_index.py checks it). They live here because the index sits below ckls.completion and may not import
it; completion can import them from here instead."""
from __future__ import annotations

import importlib
import os
import re
import threading
from dataclasses import dataclass

from ckls.fim.corpus import EXTENSIONS

GRAMMARS = {"python": "tree_sitter_python", "c": "tree_sitter_c", "cpp": "tree_sitter_cpp",
            "cuda": "tree_sitter_cuda"}
_C_DEFS = frozenset({"function_definition", "struct_specifier", "union_specifier", "enum_specifier",
                     "type_definition", "preproc_def", "preproc_function_def", "declaration"})
_CPP_DEFS = _C_DEFS | {"class_specifier", "template_declaration", "namespace_definition", "alias_declaration"}
DEFINITIONS = {"python": frozenset({"function_definition", "class_definition", "decorated_definition"}),
               "c": _C_DEFS, "cpp": _CPP_DEFS, "cuda": _CPP_DEFS}
_NO_BODY = ("struct_specifier", "enum_specifier", "type_definition")  # their body is what they define
_CONTAINERS = ("translation_unit", "module", "declaration_list", "linkage_specification", "preproc_ifdef",
               "preproc_if")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_PARSE_CHARS = 1 << 20  # larger files are not parsed (as the server's own definition index)

_local = threading.local()  # tree-sitter parsers are not thread-safe: one per thread and grammar


@dataclass(frozen=True)
class Def:
    name: str
    kind: str   # tree-sitter node type
    line: int   # 0-based first line of the definition (decorators included)
    text: str   # signature, then up to body_lines lines of the body; "..." when cut


def language_of(path: str) -> str | None:
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())


def parser_for(lang: str):
    parsers = _local.__dict__.setdefault("parsers", {})
    if lang not in parsers:
        try:
            import tree_sitter

            mod = importlib.import_module(GRAMMARS[lang])
            parsers[lang] = tree_sitter.Parser(tree_sitter.Language(mod.language()))
        except Exception:  # grammar missing or built for another ABI: no definitions for this language
            parsers[lang] = None
    return parsers[lang]


def _name_of(node) -> str | None:
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


def extract(lang: str | None, text: str, max_lines: int = 6, body_lines: int = 0) -> list[Def]:
    """The file's definitions in source order. A definition's text is its signature (cut to max_lines) and then
    body_lines lines of its body."""
    if lang is None or len(text) > MAX_PARSE_CHARS:
        return []
    parser = parser_for(lang)
    if parser is None:
        return []
    src = text.encode("utf-8", "surrogatepass")
    kinds = DEFINITIONS[lang]
    out: list[Def] = []

    def visit(node, depth: int) -> None:
        for ch in node.children:
            t = ch.type
            if t in kinds:
                target = ch
                if t in ("decorated_definition", "template_declaration"):
                    target = ch.child_by_field_name("definition") or (ch.named_children[-1] if ch.named_children
                                                                      else ch)
                name = _name_of(target)
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


def snippets(lang: str | None, text: str, max_lines: int = 6) -> dict[str, str]:
    """name -> signature snippet, the first definition of each name winning (extract_definitions' answer)."""
    out: dict[str, str] = {}
    for d in extract(lang, text, max_lines):
        out.setdefault(d.name, d.text)
    return out
