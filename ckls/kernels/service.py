"""The kernel command's steps as the CLI and the language server use them: draft the task (asking what the
source does not say), run the agent, have the judge decide, and plan the edit that applies the result.
Front ends supply the asking (a prompt, showMessageRequest), the progress sink and the cancel event.
What comes back (progress lines, the report, the outcome's dict) has its secrets masked (redact.py)."""
from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ckls.verify import Report
from ckls.verify.run import verify

from .agent import AgentConfig, AgentResult, run_agent
from .apply import Plan, names_for, plan_apply
from .redact import Redactor, foreign_build, redact_dataclass, redactor
from .task import Draft, KernelTask, draft_task


@dataclass
class Outcome:
    task: KernelTask
    lang: str
    agent: AgentResult
    report: Report | None
    kernel_path: str | None
    redact: Redactor | None = field(default=None, repr=False)

    @property
    def verdict(self) -> str:
        return self.report.verdict if self.report else "NONE"

    @property
    def source(self) -> str | None:
        return self.agent.source

    def to_dict(self, model: str) -> dict:
        red = self.redact or redactor(None, self.task.py_path)
        return red.obj({
            "verdict": self.verdict, "lang": self.lang, "stop": self.agent.stop, "turns": self.agent.turns,
            "error": self.agent.error, "source": self.agent.source, "kernel_path": self.kernel_path,
            "notes": self.agent.notes, "usage": self.agent.usage.__dict__,
            "cost_usd": self.agent.usage.cost_usd(model), "usage_text": self.agent.usage.describe(model),
            "report": self.report.to_markdown() if self.report else None,
            "report_json": self.report.to_dict() if self.report else None,
            "task": self.task.to_dict()})


def answer_all(draft_fn, ask) -> Draft:
    """Drafts, asks each open question (ask(question) -> choice or None for the default), drafts again with
    the answers, until nothing is open."""
    answers: dict[str, str] = {}
    draft = draft_fn(answers)
    for _ in range(8):
        if not draft.questions:
            return draft
        for q in draft.questions:
            a = ask(q)
            answers[q.key] = a if a in q.choices else q.default
        draft = draft_fn(answers)
    return draft


def reference_of(task: KernelTask) -> str:
    """The original to judge against: <func>_reference once a kernel has been applied, else the function."""
    try:
        text = Path(task.py_path).read_text()
    except OSError:
        text = ""
    alias = f"{task.func_name}_reference = {task.func_name}.__wrapped__"
    return f"{task.py_path}::{task.func_name}_reference" if alias in text else task.ref


def judge(task: KernelTask, source: str, lang: str, *, budget: str = "full", progress=None,
          out_path: str | None = None, redact: Redactor | None = None) -> tuple[Report, str]:
    """Writes the source (to out_path, or a fresh temporary folder) and runs the full verification. The report
    and the progress lines come back with secrets masked (what a hostile kernel printed, say)."""
    if out_path is None:
        d = tempfile.mkdtemp(prefix="ckls-kernel-")
        out_path = os.path.join(d, names_for(task.py_path, task.func_name)["module"] + (".cu" if lang == "cuda"
                                                                                         else ".c"))
    Path(out_path).write_text(source)
    spec = task.with_language(lang).spec
    red = redact or redactor(None, task.py_path)
    sink = progress or (lambda _m: None)
    say = lambda m: sink(red(m))  # noqa: E731
    say(f"verifying {Path(out_path).name} against {task.func_name}")
    rep = verify(reference_of(task), out_path, spec, budget=budget, log=say)
    rep = redact_dataclass(rep, red)
    own = (str(Path(out_path).resolve().parent) + "/", os.path.join(tempfile.gettempdir(), "ckls-build-"))
    rep.builds = [foreign_build(b, own) for b in rep.builds]  # what the compiler quoted from an #include
    return rep, out_path


def generate(task: KernelTask, lang: str, config: AgentConfig, *, progress=None, cancel: threading.Event | None = None,
             budget: str = "full", out_path: str | None = None) -> Outcome:
    red = redactor(config.api_key or os.environ.get("ANTHROPIC_API_KEY"), task.py_path)
    res = run_agent(task, lang, config, progress=progress, cancel=cancel)
    if res.source is None or (cancel is not None and cancel.is_set()):
        return Outcome(task, lang, res, None, None, red)
    rep, path = judge(task, res.source, lang, budget=budget, progress=progress, out_path=out_path, redact=red)
    return Outcome(task, lang, res, rep, path, red)


def apply_plan(outcome: Outcome, force: bool = False, py_text: str | None = None) -> Plan:
    if outcome.source is None:
        from .apply import ApplyError
        raise ApplyError(f"there is no kernel to apply (agent stopped: {outcome.agent.stop})")
    return plan_apply(outcome.task, outcome.source, outcome.lang, verdict=outcome.verdict, force=force,
                      py_text=py_text)


def draft_for(path: str, *, name=None, line=None, col=0, end_line=None, text=None, root=None,
              spec_path=None):
    """A draft_fn for answer_all."""
    return lambda answers: draft_task(path, name=name, line=line, col=col, end_line=end_line, text=text,
                                      root=root, answers=answers, spec_path=spec_path)
