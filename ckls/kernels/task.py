"""A kernel task: the contract (KernelSpec) plus the Python original it must match, and how one is made from a
function in the workspace (target.py finds it, infer.py proposes the contract, the user settles the rest)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ckls.verify.spec import KernelSpec

from .infer import Inference, Question, infer
from .target import Target, find_call_sites, find_target


@dataclass
class KernelTask:
    spec: KernelSpec
    py_path: str          # the file holding the original
    func_name: str
    source: str           # the original function's text
    notes: list[str] = field(default_factory=list)  # assumptions and call-site context, for the model
    call_sites: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.py_path}::{self.func_name}"

    def with_language(self, lang: str) -> "KernelTask":
        d = self.spec.to_dict()
        d["language"] = lang
        return KernelTask(KernelSpec.from_dict(d), self.py_path, self.func_name, self.source, list(self.notes),
                          list(self.call_sites))

    def to_dict(self) -> dict:
        return {"spec": self.spec.to_dict(), "py_path": self.py_path, "func_name": self.func_name,
                "source": self.source, "notes": self.notes, "call_sites": self.call_sites}

    @classmethod
    def from_dict(cls, d: dict) -> "KernelTask":
        return cls(KernelSpec.from_dict(d["spec"]), d["py_path"], d["func_name"], d["source"],
                   list(d.get("notes", [])), list(d.get("call_sites", [])))


@dataclass
class Draft:
    """A task in the making: complete when no question is left."""
    target: Target
    inference: Inference
    spec_source: str = "inferred"   # or the path of a spec file

    @property
    def questions(self) -> list[Question]:
        return self.inference.questions

    def task(self) -> KernelTask:
        t = self.target
        calls = [f"{c.path}:{c.line + 1}: {c.context}" for c in t.call_sites]
        return KernelTask(self.inference.spec, str(Path(t.path).resolve()), t.name, t.source,
                          list(self.inference.notes), calls)


def draft_task(path: str, *, name: str | None = None, line: int | None = None, col: int = 0,
               end_line: int | None = None, text: str | None = None, root: str | None = None,
               answers: dict | None = None, spec_path: str | None = None) -> Draft:
    """The function (by name or position), its call sites under `root`, and its contract: from `spec_path` if
    given, else <file stem>.<func>.spec.json beside the file when present, else inferred."""
    target = find_target(path, text, line=line, col=col, name=name, end_line=end_line)
    if spec_path is None:
        beside = Path(path).with_name(f"{Path(path).stem}.{target.name}.spec.json")
        if beside.exists():
            spec_path = str(beside)
    if spec_path:
        spec = KernelSpec.from_dict(json.loads(Path(spec_path).read_text()))
        if spec.numpy and not Path(spec.numpy.rpartition("::")[0]).is_absolute():  # relative to the spec file
            spec.numpy = str((Path(spec_path).parent / spec.numpy).resolve())
        return Draft(target, Inference(spec, [], [f"contract from {spec_path}"]), spec_path)
    target.call_sites = find_call_sites(target, root)
    return Draft(target, infer(target, answers))
