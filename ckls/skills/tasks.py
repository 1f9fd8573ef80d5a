"""The kernel task set: folders of original.py + spec.json + task.md (+ reference.c / reference.cu).

What the agent gets (`KernelTask`): the original function's source (its imports and module constants kept),
the spec, and task.md as notes. What it never gets: the judge's cases, which come from the spec at
verification time.
"""
from __future__ import annotations

import ast
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ckls.verify.spec import KernelSpec

LANG_SUFFIX = {"c": ".c", "cuda": ".cu"}


class TaskError(ValueError):
    pass


@dataclass
class EvalTask:
    name: str          # folder name
    folder: Path
    spec: KernelSpec   # as written in spec.json (language c)
    notes: str         # task.md

    @property
    def spec_path(self) -> Path:
        return self.folder / "spec.json"

    @property
    def original(self) -> Path:
        return self.folder / "original.py"

    @property
    def func_name(self) -> str:
        return self.spec.name

    @property
    def ref(self) -> str:
        """The original as the judge names it: path.py::function."""
        return f"{self.original.resolve()}::{self.func_name}"

    def reference_kernel(self, lang: str) -> Path | None:
        p = self.folder / f"reference{LANG_SUFFIX[lang]}"
        return p if p.exists() else None

    def spec_for(self, lang: str) -> KernelSpec:
        if lang not in LANG_SUFFIX:
            raise TaskError(f"language must be c or cuda, not {lang!r}")
        return dataclasses.replace(self.spec, language=lang)

    def source(self) -> str:
        """The original function with the imports and module-level constants it may use, nothing else
        (in particular not the vectorised NumPy version the benchmark compares against)."""
        text = self.original.read_text()
        tree = ast.parse(text)
        keep = []
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)):
                keep.append(node)
            elif isinstance(node, ast.FunctionDef) and node.name == self.func_name:
                keep.append(node)
        lines = text.splitlines()
        def first_line(n):
            decos = getattr(n, "decorator_list", None)
            return (decos[0].lineno if decos else n.lineno) - 1

        return "\n\n".join("\n".join(lines[first_line(n):n.end_lineno]) for n in keep) + "\n"

    def note_items(self) -> list[str]:
        """task.md as the agent's list of notes: the opening paragraph, then one item per bullet."""
        items: list[str] = []
        para: list[str] = []
        for line in self.notes.splitlines():
            s = line.strip()
            if s.startswith(("- ", "* ")):
                if para and not items:
                    items.append(" ".join(para))
                    para = []
                items.append(s[2:])
            elif not s:
                if para:
                    items.append(" ".join(para))
                    para = []
            elif items and line.startswith("  ") and not para:
                items[-1] += " " + s  # continuation of a bullet
            else:
                para.append(s)
        if para:
            items.append(" ".join(para))
        return items

    def kernel_task(self, lang: str):
        """The task as the kernel agent takes it (ckls.kernels.task.KernelTask)."""
        from ckls.kernels.task import KernelTask

        return KernelTask(spec=self.spec_for(lang), py_path=str(self.original.resolve()), func_name=self.func_name,
                          source=self.source(), notes=self.note_items())


def load_task(folder: str | Path) -> EvalTask:
    folder = Path(folder)
    for f in ("original.py", "spec.json", "task.md"):
        if not (folder / f).is_file():
            raise TaskError(f"{folder}: missing {f}")
    try:
        spec = KernelSpec.from_dict(json.loads((folder / "spec.json").read_text()))
    except (ValueError, json.JSONDecodeError) as e:
        raise TaskError(f"{folder}/spec.json: {e}") from e
    tree = ast.parse((folder / "original.py").read_text())
    if not any(isinstance(n, ast.FunctionDef) and n.name == spec.name for n in tree.body):
        raise TaskError(f"{folder}/original.py has no function {spec.name!r} (the spec's name)")
    return EvalTask(folder.name, folder, spec, (folder / "task.md").read_text())


def load_tasks(root: str | Path, names: list[str] | None = None) -> list[EvalTask]:
    root = Path(root)
    if not root.is_dir():
        raise TaskError(f"no task folder {root}")
    found = {p.name: p for p in sorted(root.iterdir()) if (p / "spec.json").is_file()}
    if names:
        missing = [n for n in names if n not in found]
        if missing:
            raise TaskError(f"no such task(s) in {root}: {', '.join(missing)} (have: {', '.join(found)})")
        found = {n: found[n] for n in names}
    if not found:
        raise TaskError(f"{root} holds no tasks (folders with spec.json)")
    return [load_task(p) for p in found.values()]


def default_tasks_dir() -> Path | None:
    """bench/kernel_tasks of the source checkout this package runs from, else the copy a wheel carries
    (ckls/skills/_tasks, see setup.py)."""
    for p in (Path(__file__).resolve().parents[2] / "bench" / "kernel_tasks", Path(__file__).resolve().parent / "_tasks"):
        if p.is_dir():
            return p
    return None
