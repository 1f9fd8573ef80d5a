"""`ckls kernel path.py::func --lang c|cuda`: ask the model for a kernel, have the judge decide, apply on PASS."""
from __future__ import annotations

import argparse
import json
import sys

from .agent import AgentConfig, PRICES, unavailable
from .apply import ApplyError
from .redact import redactor
from .service import answer_all, apply_plan, draft_for, generate
from .target import TargetError, parse_ref
from ckls.usage import Parser

EPILOG = f"""\
The function's contract (sizes, dtypes, shapes, outputs) is inferred from its signature, annotations,
docstring, body and the calls of it in the workspace; what cannot be inferred is asked (or, without a
terminal, taken at its default and said so). --spec uses a contract file instead (ckls verify's format).

The API key comes from ANTHROPIC_API_KEY. Progress goes to stderr; the judge's report to stdout. Secrets
(the key, secret-looking environment values, ~/.ssh and credential files, the workspace's .env, key shapes)
are masked as [redacted: ...] in everything printed or written, and in what is sent to the model. The kernel
is written to --out (default: a temporary folder, printed). --apply adds it to the project beside the
original: the kernel, its contract, a cffi wrapper the original dispatches to, and a pytest that re-verifies
it; only on PASS unless --force.

Exit status: 0 PASS, 1 FAIL, 2 UNVERIFIED (CUDA without a GPU), 3 no kernel or an error.
Models with cost estimates: {", ".join(sorted(PRICES))}.

Example:
    ckls kernel ops.py::axpy --lang c --apply
"""


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="ckls kernel", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = AgentConfig()
    p.add_argument("target", help="the Python function, as path.py::function")
    p.add_argument("--lang", choices=["c", "cuda"], default="c")
    p.add_argument("--model", default=d.model, help=f"model id (default {d.model})")
    p.add_argument("--max-turns", type=int, default=d.max_turns, help=f"model turns at most (default {d.max_turns})")
    p.add_argument("--max-tokens", type=int, default=d.max_tokens, help="output tokens per response")
    p.add_argument("--budget-tokens", type=int, default=d.budget_tokens,
                   help=f"input+output tokens for the whole run (default {d.budget_tokens})")
    p.add_argument("--base-url", default=None, help="Messages API base URL (default: the SDK's)")
    p.add_argument("--skills", default=None, help="comma-separated skills to offer (default all; '' for none)")
    p.add_argument("--spec", default=None, help="contract file (JSON) instead of inferring one")
    p.add_argument("--answer", action="append", default=[], metavar="KEY=VALUE",
                   help="answer a question up front, e.g. dtype=f64, kind:a=scalar, shape:x=rows,cols")
    p.add_argument("--yes", "-y", action="store_true", help="take the default answer to every question")
    p.add_argument("--out", default=None, help="where to write the kernel source")
    p.add_argument("--verify-budget", choices=["full", "ci", "quick"], default="full",
                   help="how hard the judge looks at the result (default full)")
    p.add_argument("--apply", action="store_true", help="add the kernel to the project on PASS")
    p.add_argument("--force", action="store_true", help="with --apply: apply even without PASS")
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.add_argument("--transcript", default=None, help="write the conversation (JSON) to this file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    red = redactor(None, args.target.split("::")[0] or None)  # ANTHROPIC_API_KEY is in the environment
    err = lambda m: print(red(m), file=sys.stderr, flush=True)  # noqa: E731
    say = (lambda m: None) if args.quiet else (lambda m: err(f"[ckls] {m}"))
    skills = None if args.skills is None else [s for s in args.skills.split(",") if s]
    cfg = AgentConfig(model=args.model, max_turns=args.max_turns, max_tokens=args.max_tokens,
                      budget_tokens=args.budget_tokens, base_url=args.base_url, skills=skills)
    missing = unavailable(cfg)  # before any question: an answer would be wasted on a run that cannot start
    if missing:
        err(f"ckls kernel: {missing}")
        return 3
    try:
        path, func = parse_ref(args.target)
        given = dict(a.split("=", 1) for a in args.answer if "=" in a)
        interactive = sys.stdin.isatty() and not args.yes

        def ask(q):
            if q.key in given:
                return given[q.key]
            if not interactive:
                say(f"{q.prompt} -> {q.default} (default; pass --answer {q.key}=...)")
                return q.default
            err(f"{q.prompt} [{'/'.join(q.choices)}] (default {q.default}): ")
            a = sys.stdin.readline().strip()
            return a or q.default

        fn = draft_for(path, name=func, spec_path=args.spec)
        draft = answer_all(lambda ans: fn({**ans, **given}), ask)
    except (TargetError, OSError, ValueError) as e:
        err(f"ckls kernel: {e}")
        return 3
    task = draft.task()
    for n in task.notes:
        say(f"assumed: {n}")
    say("contract:\n" + task.with_language(args.lang).spec.describe())
    out = generate(task, args.lang, cfg, progress=say, budget=args.verify_budget, out_path=args.out)
    if args.transcript:
        with open(args.transcript, "w") as f:
            json.dump(red.obj(out.agent.transcript), f, indent=1)
    if out.agent.error:
        err(f"ckls kernel: {out.agent.error}")
    if out.report is None:
        err(f"ckls kernel: no kernel ({out.agent.stop})")
        return 3
    say(f"kernel written to {out.kernel_path}")
    rep = out.report
    print(red({"text": rep.to_text, "markdown": rep.to_markdown, "json": rep.to_json}[args.format]()))
    if args.apply:
        try:
            written = apply_plan(out, force=args.force).write()
            say("applied: " + ", ".join(written))
        except ApplyError as e:
            err(f"ckls kernel: {e}")
    return {"PASS": 0, "FAIL": 1, "UNVERIFIED": 2}.get(rep.verdict, 3)


if __name__ == "__main__":
    sys.exit(main())
