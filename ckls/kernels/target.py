"""The function to turn into a kernel: found with tree-sitter at the cursor (or by name), with what it says about
itself (signature, annotations, docstring, the names it uses) and how the workspace calls it.

Only facts read from the source are kept here; turning them into a KernelSpec is infer.py's job.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

_PARSER = None
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", "build", "dist", ".tox", ".mypy_cache"}
MAX_FILES = 400           # workspace files scanned for call sites
MAX_FILE_BYTES = 256 * 1024
MAX_CALLS = 12


class TargetError(ValueError):
    pass


def parser():
    global _PARSER
    if _PARSER is None:
        import tree_sitter
        import tree_sitter_python

        _PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    return _PARSER


def _text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


@dataclass
class Param:
    name: str
    annotation: str = ""
    default: str = ""


@dataclass
class CallSite:
    path: str
    line: int             # 0-based
    args: list[str]       # the positional argument texts
    context: str          # the statement around the call, for the model
    in_test: bool = False


@dataclass
class Target:
    path: str
    name: str
    source: str               # the function's text, decorators included
    start_line: int           # 0-based first line of the definition (its first decorator)
    def_line: int             # 0-based line of `def`
    end_line: int             # 0-based last line of the body
    indent: str               # indentation of `def`
    params: list[Param]
    returns: str              # the return annotation
    docstring: str
    names_used: list[str]     # identifiers the body reads, in order of first use
    module_source: str = ""
    call_sites: list[CallSite] = field(default_factory=list)
    body_node: object = None  # the tree-sitter block, for infer.py

    @property
    def ref(self) -> str:
        return f"{self.path}::{self.name}"


def _functions(root):
    stack = [root]
    while stack:
        n = stack.pop()
        if n.type == "function_definition":
            yield n
        stack.extend(reversed(n.children))


def _docstring(body) -> str:
    if body is None or not body.named_children:
        return ""
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children and first.named_children[0].type == "string":
        s = first.named_children[0]
        parts = [c for c in s.named_children if c.type == "string_content"]
        return "\n".join(_text(p) for p in parts).strip()
    return ""


def _names_used(body) -> list[str]:
    seen, out, stack = set(), [], [body]
    while stack:
        n = stack.pop()
        if n.type == "identifier":
            t = _text(n)
            if t not in seen:
                seen.add(t)
                out.append(t)
        stack.extend(reversed(n.children))
    return out


def _params(fn) -> list[Param]:
    out = []
    for p in fn.child_by_field_name("parameters").named_children:
        if p.type == "identifier":
            out.append(Param(_text(p)))
        elif p.type == "typed_parameter":
            name = next((c for c in p.named_children if c.type == "identifier"), None)
            out.append(Param(_text(name), _text(p.child_by_field_name("type"))))
        elif p.type in ("default_parameter", "typed_default_parameter"):
            out.append(Param(_text(p.child_by_field_name("name")), _text(p.child_by_field_name("type")),
                             _text(p.child_by_field_name("value"))))
        elif p.type in ("list_splat_pattern", "dictionary_splat_pattern"):
            raise TargetError(f"*args/**kwargs ({_text(p)}) cannot become a fixed C signature")
    if out and out[0].name in ("self", "cls"):
        out = out[1:]
    return out


def find_target(path: str | Path, source: str | None = None, *, line: int | None = None, col: int = 0,
                name: str | None = None, end_line: int | None = None) -> Target:
    """The innermost function containing (line, col) (0-based), or spanning a selection up to end_line, or the
    function called `name` (the first one, outermost first)."""
    path = str(path)
    if source is None:
        source = Path(path).read_text()
    data = source.encode("utf-8")
    tree = parser().parse(data)
    best = None
    for fn in _functions(tree.root_node):
        fname = _text(fn.child_by_field_name("name"))
        if name is not None:
            if fname == name:
                best = fn
                break
            continue
        r0, (r1, c1) = fn.start_point[0], fn.end_point
        last = line if end_line is None else end_line
        if (r0, 0) <= (line, col) and (last, 0) <= (r1, c1 + 1):
            best = fn  # later matches are nested deeper (pre-order walk)
    if best is None:
        where = f"named {name!r}" if name else f"at line {(line or 0) + 1}"
        raise TargetError(f"no Python function {where} in {path}")
    outer = best.parent if best.parent is not None and best.parent.type == "decorated_definition" else best
    body = best.child_by_field_name("body")
    lines = source.splitlines(keepends=True)
    def_line = best.start_point[0]
    indent = re.match(r"[ \t]*", lines[def_line]).group(0) if def_line < len(lines) else ""
    return Target(path=path, name=_text(best.child_by_field_name("name")),
                  source=data[outer.start_byte:outer.end_byte].decode("utf-8", "replace"),
                  start_line=outer.start_point[0], def_line=def_line, end_line=best.end_point[0], indent=indent,
                  params=_params(best), returns=_text(best.child_by_field_name("return_type")),
                  docstring=_docstring(body), names_used=_names_used(body), module_source=source, body_node=body)


def parse_ref(ref: str) -> tuple[str, str]:
    path, sep, func = ref.rpartition("::")
    if not sep or not path or not func.isidentifier():
        raise TargetError(f"expected path.py::function, got {ref!r}")
    return path, func


# ---- call sites and tests in the workspace ---------------------------------------------------------------------
def _py_files(root: Path):
    n = 0
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for f in sorted(files):
            if f.endswith(".py"):
                yield Path(dirpath) / f
                n += 1
                if n >= MAX_FILES:
                    return


def find_call_sites(target: Target, root: str | Path | None = None) -> list[CallSite]:
    """Calls of the function by name in the workspace (tests first): their argument texts hint at dtypes,
    shapes and which arguments are scalars."""
    root = Path(root) if root else Path(target.path).parent
    pat = re.compile(rb"\b" + re.escape(target.name.encode()) + rb"\s*\(")
    found: list[CallSite] = []
    for f in _py_files(root):
        try:
            if f.stat().st_size > MAX_FILE_BYTES:
                continue
            data = f.read_bytes()
        except OSError:
            continue
        if not pat.search(data):
            continue
        tree = parser().parse(data)
        in_test = f.name.startswith("test_") or f.name.endswith("_test.py") or "tests" in f.parts
        stack = [tree.root_node]
        while stack:
            n = stack.pop()
            stack.extend(n.children)
            if n.type != "call":
                continue
            fnode = n.child_by_field_name("function")
            callee = _text(fnode).rsplit(".", 1)[-1]
            if callee != target.name:
                continue
            if os.path.samefile(f, target.path) and target.start_line <= n.start_point[0] <= target.end_line:
                continue  # recursion inside the function itself
            args = [_text(a) for a in n.child_by_field_name("arguments").named_children
                    if a.type not in ("keyword_argument", "list_splat", "dictionary_splat")]
            stmt = n
            while stmt.parent is not None and stmt.parent.type not in ("block", "module"):
                stmt = stmt.parent
            found.append(CallSite(str(f), n.start_point[0], args, _text(stmt)[:400], in_test))
    found.sort(key=lambda c: (not c.in_test, c.path, c.line))
    return found[:MAX_CALLS]


def assignments_in(source: str) -> dict[str, str]:
    """name -> right-hand side text of simple `name = expr` statements anywhere in a file (last one wins)."""
    out = {}
    for m in re.finditer(r"^[ \t]*([A-Za-z_]\w*)\s*=\s*(?!=)(.+)$", source, re.M):
        out[m.group(1)] = m.group(2).strip()
    return out
