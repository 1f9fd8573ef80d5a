"""What a skill is worth: each task through the kernel agent with and without the skill, several trials, the
verdict of ckls.verify (never the agent's own claims) deciding pass or fail.

Runs are interleaved (trial by trial, task by task, both conditions back to back) so that drift in the API's
behaviour over the evaluation hits both conditions alike. Every candidate is written to disk and judged in a
fresh sandbox with a fresh seed, recorded with the run.
"""
from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .lint import skill_folders
from .tasks import LANG_SUFFIX, EvalTask

CONDITIONS = ("without", "with")
NO_KERNEL = "NO_KERNEL"  # the agent stopped without a candidate: a failure like any other
TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class EvalError(RuntimeError):
    pass


@dataclass
class Run:
    model: str
    task: str
    lang: str
    condition: str       # with | without
    trial: int
    verdict: str         # PASS FAIL UNVERIFIED ERROR NO_KERNEL
    check: str | None    # the judge's failed check, when it failed
    stop: str            # why the agent stopped
    turns: int
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float | None = None
    speedup_original: float | None = None
    speedup_numpy: float | None = None
    agent_s: float = 0.0
    verify_s: float = 0.0
    seed: int | None = None
    agent_error: str | None = None
    kernel_path: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"

    @property
    def tokens(self) -> int:
        return sum(getattr(self, k) for k in TOKEN_KEYS)


@dataclass
class EvalSettings:
    skill: str
    models: list[str]
    lang: str = "c"
    trials: int = 3
    baseline: str = "none"       # none: "without" has no skills; others: every other skill in skills_dir
    judge_budget: str = "full"   # ckls.verify budget name: full | ci | quick
    max_turns: int | None = None
    max_tokens: int | None = None
    budget_tokens: int | None = None
    base_url: str | None = None
    skills_dir: str | None = None
    timeout_s: float | None = None
    max_retries: int | None = None
    out_dir: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvalResult:
    settings: EvalSettings
    tasks: list[str]
    runs: list[Run] = field(default_factory=list)
    started: float = 0.0
    seconds: float = 0.0
    interrupted: bool = False

    def summary(self) -> dict:
        return summarize(self.runs, self.settings.models)

    def to_dict(self) -> dict:
        return {"settings": self.settings.to_dict(), "tasks": self.tasks, "started": self.started,
                "seconds": self.seconds, "interrupted": self.interrupted, "summary": self.summary(),
                "runs": [asdict(r) for r in self.runs]}


# ---- which skills each condition gets ---------------------------------------------------------------------
def skill_sets(skill: str, baseline: str, skills_dir: Path | None) -> dict[str, list[str]]:
    if baseline == "none":
        return {"without": [], "with": [skill]}
    if baseline == "others":
        if skills_dir is None:
            raise EvalError("--baseline others needs the skills folder")
        others = [p.name for p in skill_folders(skills_dir) if p.name != skill]
        return {"without": others, "with": others + [skill]}
    raise EvalError(f"baseline must be none or others, not {baseline!r}")


def _agent_config(s: EvalSettings, model: str, skills: list[str]):
    from ckls.kernels.agent import AgentConfig

    kw = {"model": model, "skills": list(skills)}
    for k in ("max_turns", "max_tokens", "budget_tokens", "base_url", "timeout_s", "max_retries"):
        v = getattr(s, k)
        if v is not None:
            kw[k] = v
    if s.skills_dir is not None:
        kw["skills_dir"] = Path(s.skills_dir)
    return AgentConfig(**kw)


def default_skills_dir() -> Path | None:
    """The skills folder the agent uses by default (AgentConfig's own default)."""
    try:
        from ckls.kernels.agent import AgentConfig
    except ImportError:
        return None
    d = getattr(AgentConfig(), "skills_dir", None)
    return Path(d) if d else None


# ---- one run ---------------------------------------------------------------------------------------------
def run_one(task: EvalTask, s: EvalSettings, model: str, condition: str, skills: list[str], trial: int,
            out_dir: Path, api_key: str | None = None, log=None, cancel=None) -> Run:
    from ckls.kernels.agent import run_agent
    from ckls.verify.run import verify

    say = log or (lambda *_: None)
    cfg = _agent_config(s, model, skills)
    if api_key is not None:
        cfg.api_key = api_key
    t0 = time.monotonic()
    res = run_agent(task.kernel_task(s.lang), s.lang, cfg, cancel=cancel)
    agent_s = time.monotonic() - t0
    u = res.usage
    try:
        cost = u.cost_usd(model)
    except Exception:  # a price table that cannot price this model says so with None
        cost = None
    run = Run(model=model, task=task.name, lang=s.lang, condition=condition, trial=trial, verdict=NO_KERNEL,
              check=None, stop=res.stop, turns=res.turns, cost_usd=cost, agent_s=agent_s,
              agent_error=res.error, **{k: int(getattr(u, k, 0) or 0) for k in TOKEN_KEYS})
    stem = out_dir / _slug(model) / task.name / f"{condition}-{trial}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    _write_json(stem.with_suffix(".transcript.json"), res.transcript)
    if res.source:
        kernel = stem.with_suffix(LANG_SUFFIX[s.lang])
        kernel.write_text(res.source)
        run.kernel_path = str(kernel)
        t1 = time.monotonic()
        rep = verify(task.ref, str(kernel), task.spec_for(s.lang), spec_path=str(task.spec_path),
                     budget=s.judge_budget)
        run.verify_s = time.monotonic() - t1
        run.verdict, run.seed = rep.verdict, rep.seed
        run.check = rep.failure.check if rep.failure else None
        if rep.bench and rep.verdict == "PASS":
            sp = rep.bench.get("speedup", {})
            run.speedup_original = sp.get("original", {}).get("x")
            run.speedup_numpy = sp.get("numpy", {}).get("x")
        stem.with_suffix(".verify.txt").write_text(rep.to_text() + "\n")
    say(f"{model} {task.name} {condition} #{trial}: {run.verdict}"
        f"{f' ({run.check})' if run.check else ''}, stop {run.stop}, {run.turns} turns, {run.tokens} tokens")
    return run


def run_eval(s: EvalSettings, tasks: list[EvalTask], api_key: str | None = None, log=None, cancel=None,
             on_run=None) -> EvalResult:
    """All runs of an evaluation. Ctrl-C (or `cancel` set) stops after the current run with what was done."""
    if s.trials < 1:
        raise EvalError("trials must be at least 1")
    if s.lang not in LANG_SUFFIX:
        raise EvalError(f"language must be c or cuda, not {s.lang!r}")
    skills_dir = Path(s.skills_dir) if s.skills_dir else default_skills_dir()
    if skills_dir is not None and not (skills_dir / s.skill / "SKILL.md").is_file():
        raise EvalError(f"no skill {s.skill!r} in {skills_dir}")
    sets = skill_sets(s.skill, s.baseline, skills_dir)
    out_dir = Path(s.out_dir) if s.out_dir else Path(tempfile.mkdtemp(prefix="ckls-skills-eval-"))
    s.out_dir = str(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = EvalResult(settings=s, tasks=[t.name for t in tasks], started=time.time())
    t0 = time.monotonic()
    try:
        for model in s.models:
            for trial in range(s.trials):
                for task in tasks:
                    for cond in CONDITIONS:
                        if cancel is not None and cancel.is_set():
                            raise KeyboardInterrupt
                        r = run_one(task, s, model, cond, sets[cond], trial, out_dir, api_key, log, cancel)
                        res.runs.append(r)
                        if on_run:
                            on_run(res)
    except KeyboardInterrupt:
        res.interrupted = True
    res.seconds = time.monotonic() - t0
    return res


# ---- summary ---------------------------------------------------------------------------------------------
def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def _spread(xs: list[float]) -> dict:
    if not xs:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {"mean": sum(xs) / len(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs), "n": len(xs)}


def condition_stats(runs: list[Run]) -> dict:
    """Pass rate per trial (over the tasks) and its spread across trials; per-run means of the rest."""
    trials = sorted({r.trial for r in runs})
    per_trial = []
    for t in trials:
        rt = [r for r in runs if r.trial == t]
        per_trial.append(sum(r.passed for r in rt) / len(rt))
    passes = sum(r.passed for r in runs)
    costs = [r.cost_usd for r in runs]
    cost_known = bool(runs) and all(c is not None for c in costs)
    tokens = {k: _mean([getattr(r, k) for r in runs]) for k in TOKEN_KEYS}
    tokens["total"] = _mean([r.tokens for r in runs])
    verdicts: dict[str, int] = {}
    stops: dict[str, int] = {}
    for r in runs:
        verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
        stops[r.stop] = stops.get(r.stop, 0) + 1
    return {
        "runs": len(runs), "passes": passes,
        "pass_rate": dict(_spread(per_trial), per_trial=per_trial),
        "tokens": tokens,
        "tokens_per_pass": (sum(r.tokens for r in runs) / passes) if passes else None,
        "turns": _mean([r.turns for r in runs]),
        "cost_usd": {"total": sum(costs) if cost_known else None, "per_run": _mean(costs) if cost_known else None,
                     "per_pass": (sum(costs) / passes) if cost_known and passes else None},
        "speedup": {"vs_original": _geomean([r.speedup_original for r in runs if r.passed]),
                    "vs_numpy": _geomean([r.speedup_numpy for r in runs if r.passed]),
                    "measured": sum(1 for r in runs if r.passed and r.speedup_original is not None)},
        "verdicts": verdicts, "stops": stops,
    }


def lift(without: dict, with_: dict, runs_without: list[Run], runs_with: list[Run]) -> dict:
    """What the skill changed: pass-rate delta (mean and spread over trials, paired by trial), token and cost
    savings (fractions of the baseline's per-run mean; positive = the skill saves)."""
    pw, pwo = with_["pass_rate"], without["pass_rate"]
    paired = []
    for t in sorted({r.trial for r in runs_with} & {r.trial for r in runs_without}):
        a = [r for r in runs_with if r.trial == t]
        b = [r for r in runs_without if r.trial == t]
        paired.append(sum(r.passed for r in a) / len(a) - sum(r.passed for r in b) / len(b))
    tw, two = with_["tokens"]["total"], without["tokens"]["total"]
    cw, cwo = with_["cost_usd"]["per_run"], without["cost_usd"]["per_run"]
    return {
        "pass_rate_delta": dict(_spread(paired), per_trial=paired) if paired else _spread([]),
        "pass_rate_with": pw["mean"], "pass_rate_without": pwo["mean"],
        "token_savings": (1.0 - tw / two) if tw is not None and two else None,
        "tokens_saved_per_run": (two - tw) if tw is not None and two is not None else None,
        "cost_savings": (1.0 - cw / cwo) if cw is not None and cwo else None,
        "turns_delta": (with_["turns"] - without["turns"]) if with_["turns"] is not None and
        without["turns"] is not None else None,
    }


def summarize(runs: list[Run], models: list[str] | None = None) -> dict:
    out = {}
    for model in models or sorted({r.model for r in runs}):
        rm = [r for r in runs if r.model == model]
        if not rm:
            continue
        by = {c: [r for r in rm if r.condition == c] for c in CONDITIONS}
        stats = {c: condition_stats(by[c]) for c in CONDITIONS}
        per_task = {}
        for name in sorted({r.task for r in rm}):
            per_task[name] = {c: {"passes": sum(r.passed for r in by[c] if r.task == name),
                                  "runs": sum(1 for r in by[c] if r.task == name),
                                  "tokens": _mean([r.tokens for r in by[c] if r.task == name])}
                              for c in CONDITIONS}
        out[model] = {"conditions": stats, "lift": lift(stats["without"], stats["with"], by["without"], by["with"]),
                      "per_task": per_task}
    return out


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in s)


def _write_json(path: Path, obj) -> None:
    try:
        path.write_text(json.dumps(obj, indent=1, default=str))
    except (TypeError, ValueError):
        path.write_text(json.dumps(str(obj)))


def load_result(path: str | Path) -> dict:
    """A result JSON written by `ckls skills eval` (for re-plotting or comparing)."""
    return json.loads(Path(path).read_text())
