"""The tools the model works with. Each runs the real thing: gcc/nvcc through the judge's own build, the judge's
fixed test plan, the judge's benchmark. What they return is text for the model; the final verdict is never
taken from here but from a fresh, full ckls.verify run by the caller.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ckls.verify import build as build_mod
from ckls.verify.run import Budget, verify

from .redact import foreign_source
from .skills import Skill, SkillError
from .task import KernelTask

MAX_RESULT = 6000  # characters of one tool result: enough for diagnostics, small enough for the context


def tool_definitions(skills: list[Skill], lang: str) -> list[dict]:
    src = {"type": "object", "properties": {"source": {"type": "string", "description": "the complete kernel "
           f"source file ({'C' if lang == 'c' else 'CUDA'})"}}, "required": ["source"]}
    tools = []
    if skills:
        tools.append({"name": "read_skill", "description": "Read a skill's guidance (SKILL.md body) or one of its "
                      "reference files. Skills available: " + ", ".join(s.name for s in skills) + ".",
                      "input_schema": {"type": "object", "properties": {
                          "name": {"type": "string", "enum": [s.name for s in skills]},
                          "file": {"type": "string", "description": "optional: a file inside the skill, e.g. "
                                   "references/avx2.md"}}, "required": ["name"]}})
    tools += [
        {"name": "compile", "description": "Compile a candidate exactly as the judge does (gcc -O3 -march=native "
         "-fopenmp for C, nvcc -O3 for CUDA) and check it defines the required function with the required "
         "signature. Returns diagnostics.", "input_schema": src},
        {"name": "run_public_tests", "description": "Run the judge's fixed test plan on a candidate: edge sizes "
         "(0, 1, tile-1, tile, tile+1, large), odd alignments, special values, repeated calls; outputs compared "
         "with the Python original. Returns PASS or the first failing case. CUDA: run on the GPU when there is "
         "one (no compute-sanitizer here), else compiled only (UNVERIFIED)."
         , "input_schema": src},
        {"name": "benchmark", "description": "Time a candidate that passes the public tests against the Python "
         "original (and the NumPy version when there is one) at the typical sizes (CUDA: needs a GPU).",
         "input_schema": src},
        {"name": "submit_kernel", "description": "Submit the final kernel. Ends the session; the judge then runs "
         "its full hidden verification (fresh random cases, sanitizers) on it.", "input_schema": {
             "type": "object", "properties": {"source": src["properties"]["source"],
                                              "notes": {"type": "string", "description": "one paragraph: "
                                                        "the approach and anything the user should know"}},
             "required": ["source"]}},
    ]
    return tools


@dataclass
class ToolResult:
    text: str
    is_error: bool = False
    submitted: bool = False


class Workbench:
    """Runs tool calls for one task; remembers the last candidate that compiled and the last that passed."""

    def __init__(self, task: KernelTask, lang: str, skills: list[Skill], workdir: str | None = None,
                 redact=None):
        self.task = task
        self.redact = redact or (lambda t: t)   # masks secrets before any text is clipped or returned
        self.lang = lang
        self.skills = {s.name: s for s in skills}
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="ckls-kernel-"))
        self.n = 0
        self.last_compiled: str | None = None
        self.last_passed: str | None = None
        self.submitted: str | None = None
        self.notes = ""

    @property
    def ext(self) -> str:
        return ".cu" if self.lang == "cuda" else ".c"

    def run(self, name: str, args: dict) -> ToolResult:
        r = self._run(name, args)
        r.text = self.redact(r.text)
        return r

    def _clip(self, text: str) -> str:
        return _clip(self.redact(text))

    def _run(self, name: str, args: dict) -> ToolResult:
        try:
            if name == "read_skill":
                return self.read_skill(str(args.get("name", "")), args.get("file"))
            if name not in ("compile", "run_public_tests", "benchmark", "submit_kernel"):
                return ToolResult(f"unknown tool {name!r}", True)
            src = args.get("source")
            if not isinstance(src, str) or not src.strip():
                return ToolResult("`source` must be the complete kernel source as a string", True)
            if name == "compile":
                return self.compile(src)
            if name == "run_public_tests":
                return self.public_tests(src)
            if name == "benchmark":
                return self.benchmark(src)
            return self.submit(src, str(args.get("notes") or ""))
        except Exception as e:  # a tool must answer, not take the loop down
            return ToolResult(f"{name} failed inside ckls: {type(e).__name__}: {e}", True)

    def read_skill(self, name: str, file: str | None) -> ToolResult:
        s = self.skills.get(name)
        if s is None:
            return ToolResult(f"no skill {name!r}; available: {', '.join(self.skills)}", True)
        try:
            return ToolResult(s.read(file))
        except (SkillError, OSError) as e:
            return ToolResult(str(e), True)

    def _write(self, src: str) -> Path:
        self.n += 1
        p = self.dir / f"candidate{self.n}{self.ext}"
        p.write_text(src)
        return p

    def _check_file(self, cand: Path) -> Path:
        """The candidate followed by the contract's declaration: a wrong signature is a compile error. One
        self-contained file (the compiler's jail sees nothing beside it); the candidate's lines keep their
        numbers."""
        link = 'extern "C" ' if self.lang == "cuda" else ""
        p = cand.with_name(cand.stem + "_check" + self.ext)
        p.write_text(cand.read_text() + f'\n#include <stdint.h>\n{link}{self.task.spec.c_prototype()};\n')
        return p

    def compile(self, src: str) -> ToolResult:
        cand = self._write(src)
        chk = self._check_file(cand)
        work = self.dir / f"build{self.n}"
        if self.lang == "cuda":
            res = build_mod.build_cuda(chk, work)
        else:
            res = build_mod.build_c(chk, work, "opt")
        log = foreign_source(res.log, (str(self.dir.resolve()) + "/", str(self.dir) + "/"))  # an #include of a key
        log = log.replace(str(chk), "kernel" + self.ext).replace(str(cand), "kernel" + self.ext)
        log = log.replace(str(self.dir) + "/", "")
        if not res.ok:
            head = "FORBIDDEN IMPORTS: " + ", ".join(res.forbidden_symbols) if res.forbidden_symbols else "ERRORS"
            return ToolResult(f"{head}\n{self._clip(log)}", True)
        self.last_compiled = src
        warn = f"\nwarnings:\n{self._clip(log)}" if log.strip() else " (no warnings)"
        return ToolResult(f"OK: compiled with {' '.join(res.command[:1] + _flags(res.command))}{warn}")

    def _verify(self, src: str, budget: Budget):
        compiled = self.compile(src)
        if compiled.is_error:
            return compiled, None
        cand = self.dir / f"candidate{self.n}{self.ext}"
        spec = self.task.spec
        rep = verify(self.task.ref, str(cand), spec, budget=budget, seed=1000 + self.n)
        return compiled, rep

    def public_tests(self, src: str) -> ToolResult:
        compiled, rep = self._verify(src, Budget(hypothesis_examples=0, sanitizer=False, bench_s=0.0,
                                                 shrink_tries=6))
        if rep is None:
            return ToolResult("does not compile:\n" + compiled.text, True)
        text = rep.to_text().replace(str(self.dir) + "/", "")
        if rep.verdict == "PASS":
            self.last_passed = src
            return ToolResult("PASS (public plan; the final verification adds random cases and ASan/UBSan)\n" +
                              self._clip(text))
        return ToolResult(self._clip(text), rep.verdict in ("FAIL", "ERROR"))

    def benchmark(self, src: str) -> ToolResult:
        if self.lang == "cuda" and not build_mod.gpu_present():
            return ToolResult("benchmark: no GPU here, so a CUDA candidate cannot be timed", True)
        compiled, rep = self._verify(src, Budget(hypothesis_examples=0, sanitizer=False, bench_s=1.5,
                                                 shrink_tries=0))
        if rep is None:
            return ToolResult("does not compile:\n" + compiled.text, True)
        if rep.verdict != "PASS" or not rep.bench:
            return ToolResult("not benchmarked, the public plan fails first:\n" + self._clip(rep.to_text()), True)
        self.last_passed = src
        return ToolResult("\n".join(rep.bench_lines()))

    def submit(self, src: str, notes: str) -> ToolResult:
        compiled = self.compile(src)
        if compiled.is_error:
            return ToolResult("not accepted, it does not compile; fix it and submit again:\n" + compiled.text, True)
        self.submitted, self.notes = src, notes
        return ToolResult("submitted; the judge takes it from here", submitted=True)


def _flags(cmd: list[str]) -> list[str]:
    return [c for c in cmd[1:] if c.startswith("-") and c not in ("-o", "-shared", "-fPIC")]


def _clip(text: str, n: int = MAX_RESULT) -> str:
    return text if len(text) <= n else text[: n // 2] + f"\n[... {len(text) - n} characters cut ...]\n" + text[-n // 2:]
