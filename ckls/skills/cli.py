"""`ckls skills eval|new|lint`: measure a skill's lift on the kernel task set, scaffold a skill, lint skills/."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ckls.usage import Parser

EVAL_EPILOG = """\
Each task of the task set runs through the kernel agent with the skill and without it, --trials times each;
ckls verify judges every submitted kernel (a run without a kernel counts as a failure). The report gives, per
model: pass rate (mean and spread over trials), tokens (input, output, cache writes/reads), turns, a cost
estimate, the speedup of passing kernels, and the lift (pass-rate delta, token savings).

Writes into --out: result.json, lift.svg, and per run the kernel, the judge's report and the transcript.
The API key comes from ANTHROPIC_API_KEY (or --base-url for a compatible endpoint).

Example:
    ckls skills eval --skill c-simd-kernels --model claude-sonnet-5-5 --trials 3 --out eval-simd
"""


def _repo_skills_dir() -> Path:
    """skills/ of the source checkout, else the agent's skills folder, else ./skills."""
    here = Path(__file__).resolve().parents[2] / "skills"
    if here.is_dir():
        return here
    from .evaluate import default_skills_dir

    return default_skills_dir() or Path("skills")


def cmd_lint(args) -> int:
    from .lint import ERROR, lint_tree

    paths = args.paths or [str(_repo_skills_dir())]
    findings = []
    for p in paths:
        findings += lint_tree(p)
    errors = [f for f in findings if f.level == ERROR]
    failed = errors or (args.strict and findings)
    if args.format == "json":
        print(json.dumps({"ok": not failed, "findings": [f.to_dict() for f in findings]}, indent=2))
    else:
        for f in findings:
            print(f)
        n_skills = sum(1 for _ in _skills_in(paths))
        print(f"{n_skills} skill(s) checked: {len(errors)} error(s), {len(findings) - len(errors)} warning(s)",
              file=sys.stderr)
    return 1 if failed else 0


def _skills_in(paths):
    for p in map(Path, paths):
        if (p / "SKILL.md").exists():
            yield p
        elif p.is_dir():
            yield from (d for d in p.iterdir() if (d / "SKILL.md").exists())


def cmd_new(args) -> int:
    from .scaffold import ScaffoldError, new_skill

    root = Path(args.dir) if args.dir else _repo_skills_dir()
    try:
        md = new_skill(root, args.name, args.description, force=args.force)
    except ScaffoldError as e:
        print(f"ckls skills new: {e}", file=sys.stderr)
        return 2
    print(md)
    if not args.description:
        print("write the description (what the skill does and when to use it) before `ckls skills lint` passes",
              file=sys.stderr)
    return 0


def cmd_eval(args) -> int:
    from .evaluate import EvalError, EvalSettings, run_eval
    from .report import to_json, to_svg, to_text
    from .tasks import TaskError, default_tasks_dir, load_tasks

    try:
        import anthropic  # noqa: F401

        import ckls.kernels.agent  # noqa: F401
    except ImportError as e:
        print(f"ckls skills eval: the kernel agent is not available ({e}); pip install 'ckls[kernel]'",
              file=sys.stderr)
        return 3
    tasks_dir = args.tasks or default_tasks_dir()
    if tasks_dir is None:
        print("ckls skills eval: pass --tasks DIR (this installation has no bench/kernel_tasks)", file=sys.stderr)
        return 2
    try:
        tasks = load_tasks(tasks_dir, args.task or None)
    except TaskError as e:
        print(f"ckls skills eval: {e}", file=sys.stderr)
        return 2
    if args.lang == "cuda" and not args.task:  # by default only the tasks proven passable in CUDA
        tasks = [t for t in tasks if t.reference_kernel("cuda") is not None]
    if args.lang == "cuda":
        from ckls.verify.build import gpu_present

        if not gpu_present():
            print("ckls skills eval: no GPU here: CUDA kernels are only compiled and judged UNVERIFIED, which "
                  "counts as not passing; run this on a machine with a GPU", file=sys.stderr)
    if not args.base_url and not os.environ.get("ANTHROPIC_API_KEY"):
        print("ckls skills eval: set ANTHROPIC_API_KEY (or --base-url for a compatible server)", file=sys.stderr)
        return 2
    out = Path(args.out or f"skills-eval-{args.skill}-{time.strftime('%Y%m%d-%H%M%S')}")
    from ckls.kernels.agent import AgentConfig

    s = EvalSettings(skill=args.skill, models=args.model or [AgentConfig().model], lang=args.lang,
                     trials=args.trials, baseline=args.baseline, judge_budget=args.budget,
                     max_turns=args.max_turns, max_tokens=args.max_tokens, budget_tokens=args.budget_tokens,
                     base_url=args.base_url, skills_dir=args.skills_dir, timeout_s=args.timeout,
                     max_retries=args.max_retries, out_dir=str(out))
    log = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    n = len(s.models) * s.trials * len(tasks) * 2
    if log:
        log(f"{n} runs: {len(s.models)} model(s) x {s.trials} trial(s) x {len(tasks)} task(s) x with/without; "
            f"writing to {out}")

    def save(res):  # after every run, so an interrupted evaluation keeps what it has
        (out / "result.json").write_text(to_json(res.to_dict()))

    try:
        res = run_eval(s, tasks, log=log, on_run=save)
    except EvalError as e:
        print(f"ckls skills eval: {e}", file=sys.stderr)
        return 2
    d = res.to_dict()
    (out / "result.json").write_text(to_json(d))
    (out / "lift.svg").write_text(to_svg(d))
    if args.json:
        Path(args.json).write_text(to_json(d))
    if args.svg:
        Path(args.svg).write_text(to_svg(d))
    print(to_text(d))
    if log:
        log(f"wrote {out / 'result.json'} and {out / 'lift.svg'}")
    return 130 if res.interrupted else 0


def cmd_report(args) -> int:
    from .evaluate import load_result
    from .report import to_svg, to_text

    d = load_result(args.result)
    if args.svg:
        Path(args.svg).write_text(to_svg(d))
    print(to_text(d))
    return 0


def parser() -> argparse.ArgumentParser:
    ap = Parser(prog="ckls skills", description=__doc__)
    sub = ap.add_subparsers(dest="skills_cmd", metavar="ACTION", required=True)

    e = sub.add_parser("eval", help="measure a skill: the task set with and without it, judged by ckls verify",
                       epilog=EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--skill", required=True, help="the skill to evaluate (a folder name under the skills folder)")
    e.add_argument("--model", action="append", help="model to run (repeat for several; default: the kernel command's model)")
    e.add_argument("--tasks", help="task folder (default: bench/kernel_tasks of the checkout)")
    e.add_argument("--task", action="append", help="only this task (repeatable)")
    e.add_argument("--lang", choices=["c", "cuda"], default="c")
    e.add_argument("--trials", type=int, default=3, help="trials per task and condition (default 3)")
    e.add_argument("--baseline", choices=["none", "others"], default="none",
                   help="none: without = no skills at all; others: without = every other skill, with = all")
    e.add_argument("--budget", choices=["full", "ci", "quick"], default="full",
                   help="the judge's budget (full measures speedups; ci and quick do not)")
    e.add_argument("--skills-dir", help="where the skills live (default: the agent's skills folder)")
    e.add_argument("--max-turns", type=int)
    e.add_argument("--max-tokens", type=int, help="per response")
    e.add_argument("--budget-tokens", type=int, help="input+output tokens per run")
    e.add_argument("--base-url", help="a Messages-API endpoint other than Anthropic's")
    e.add_argument("--timeout", type=float, help="seconds per API request")
    e.add_argument("--max-retries", type=int)
    e.add_argument("--out", help="output folder (default skills-eval-SKILL-TIMESTAMP)")
    e.add_argument("--json", help="also write the result JSON here")
    e.add_argument("--svg", help="also write the plot here")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    e.set_defaults(func=cmd_eval)

    n = sub.add_parser("new", help="scaffold a skill folder with a SKILL.md template")
    n.add_argument("name", help="lowercase letters, digits and hyphens, at most 64 characters")
    n.add_argument("--description", help="what the skill does and when to use it (at most 1024 characters)")
    n.add_argument("--dir", help="the skills folder (default: skills/ of the checkout)")
    n.add_argument("--force", action="store_true", help="overwrite an existing SKILL.md")
    n.set_defaults(func=cmd_new)

    lt = sub.add_parser("lint", help="check skills against the Agent Skills format (exit 1 on errors)")
    lt.add_argument("paths", nargs="*", help="skill folders or folders of skills (default: skills/)")
    lt.add_argument("--strict", action="store_true", help="warnings fail too")
    lt.add_argument("--format", choices=["text", "json"], default="text")
    lt.set_defaults(func=cmd_lint)

    r = sub.add_parser("report", help="print (and re-plot) a result.json of an earlier evaluation")
    r.add_argument("result")
    r.add_argument("--svg", help="write the plot here")
    r.set_defaults(func=cmd_report)
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
