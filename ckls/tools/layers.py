"""The layers of ckls and who may import whom — checked, not only written down (docs/architecture.md).

    python -m ckls.tools.layers            # exit 1 and a line per violation or cycle; "layers: ok" otherwise

Every import counts, at the top of a module or inside a function: a lazy import is still a dependency. A
package may import itself and the packages listed for it below, or of a package only the modules listed
("runtime.gguf_write"); `cli` (the command line) may import any but the factory. Cycles are looked for between
packages and between modules.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# package -> the ckls packages it may import (besides itself). The order is the stack, bottom first.
ALLOWED: dict[str, set[str]] = {
    "native": {"_native"},        # the cffi module
    "models": set(),              # the shipped model file and its path
    "fim": set(),                 # the prompt layout and data rules: torch-free, tokenizer-agnostic
    "verify": {"usage"},          # the judge depends on nothing it judges
    "atomic": set(),              # the one atomic write (fsync of file and folder)
    "stats": set(),               # the one paired statistic (bootstrap interval of a mean difference)
    "usage": set(),               # the one rule for command-line usage errors (a line, exit status 2)
    "syntax": {"fim"},            # tree-sitter grammars, scopes, definitions: shared by completion and the index
    "config": {"fim", "models"},
    "runtime": {"native", "models", "fim", "atomic"},
    "index": {"fim", "runtime", "syntax"},  # the repository index (SQLite): shared by completion, tune and eval
    "completion": {"runtime", "fim", "models", "config", "index", "syntax"},
    "tune": {"runtime", "fim", "config", "models", "index", "atomic", "stats"},
    "eval": {"completion", "runtime", "fim", "config", "models", "index", "syntax", "stats"},
    # the model factory (torch; its GPU machines have no native build): nothing imports it; of the runtime only
    # the GGUF writer, which imports without the native build; the index for the retrieved windows of its prompts
    "train": {"fim", "runtime.gguf_write", "atomic", "index"},
    "kernels": {"verify", "usage"},
    "skills": {"kernels", "verify", "usage"},
    "server": {"completion", "tune", "kernels", "config", "fim", "eval"},
    "tools": set(),
    "cli": {"completion", "eval", "kernels", "models", "native", "runtime", "server", "skills", "tune", "verify",
            "config", "fim", "usage"},
    "__main__": {"cli"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """ckls modules a file imports (absolute names), wherever the import statement sits. `from pkg import mod`
    depends on pkg.mod; `from mod import name` on mod."""
    mod = module_name(path)
    pkg_parts = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = ".".join(pkg_parts[: len(pkg_parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            subs = {f"{prefix}.{a.name}" for a in node.names} & modules
            out |= subs if subs else {prefix}
    return {n for n in out if n in modules}


def graph() -> dict[str, set[str]]:
    """module -> the ckls modules it imports."""
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    edges = {}
    for mod, path in files.items():
        edges[mod] = imports(path, set(files)) - {mod}
    return edges


def package(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "ckls"


def violations(edges: dict[str, set[str]]) -> list[str]:
    out = []
    for mod, deps in sorted(edges.items()):
        src = package(mod)
        for d in sorted(deps):
            dst = package(d)
            if dst in (src, "ckls"):
                continue
            if src not in ALLOWED:
                out.append(f"{mod}: package {src!r} has no entry in ckls.tools.layers.ALLOWED")
                break
            if dst not in ALLOWED[src] and not any(f"{d}.".startswith(f"ckls.{a}.") for a in ALLOWED[src]):
                out.append(f"{mod} imports {d}: {src} may not import {dst}")
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def package_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for mod, deps in edges.items():
        out.setdefault(package(mod), set()).update(package(d) for d in deps if package(d) != package(mod))
    return out


def check() -> list[str]:
    edges = graph()
    problems = violations(edges)
    problems += ["package cycle: " + " -> ".join(c) for c in cycles(package_graph(edges))]
    problems += ["module cycle: " + " -> ".join(c) for c in cycles(edges)]
    return problems


def main() -> int:
    problems = check()
    for p in problems:
        print(p)
    print("layers: ok" if not problems else f"layers: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
