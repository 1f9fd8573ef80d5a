"""`ckls tune REPO`: one tuning round on a repository from the command line, with a progress bar on stderr and a
summary table at the end. Settings: defaults < REPO/ckls.toml < flags (the tune_* settings of the common
schema). Ctrl-C (or SIGTERM) stops after a checkpoint; the next run resumes at that step."""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time


def add_args(p) -> None:
    from ckls.config import add_cli_args

    p.add_argument("repo", help="the repository (or any folder) to learn from")
    p.add_argument("--state-dir", default=None, help="tuning state folder (default: tune_dir, else "
                   "~/.cache/ckls/tune/<repo>)")
    p.add_argument("--status", action="store_true", help="print the state of earlier rounds and exit")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--progress", choices=("bar", "lines", "none"), default="bar",
                   help="bar (redrawn on a terminal, a line a second otherwise), lines (one per step, for logs) or none")
    p.add_argument("--quiet", "-q", action="store_true", help="same as --progress none")
    p.add_argument("--exclude-eval-split", type=float, default=None, metavar="FRACTION",
                   help="leave out the files `ckls eval completion --held-out FRACTION` measures on (split seed 0), "
                        "so a before/after evaluation tests on code the adapter never saw")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="set a tuning option the settings do not cover (repeatable): " + ", ".join(EXPERT))
    add_cli_args(p)


# TuneOptions fields without a setting, for experiments (bench/tune_gain.py) and experts
EXPERT = ("epochs", "patience", "eval_every", "warmup", "weight_decay", "fim_rate", "layout", "example_chars",
          "max_examples", "context_chars", "middle_only", "relayout",
          "heldout_frac", "heldout_windows", "gate_windows", "gate_min_windows", "replay", "seed", "exact")


def expert_options(opts, pairs: list[str]):
    """opts with the KEY=VALUE pairs applied, each converted to the field's type; ValueError names a bad one."""
    from dataclasses import replace

    changes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in EXPERT:
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE with KEY one of {', '.join(EXPERT)}")
        kind = type(getattr(opts, key))
        try:
            if kind is bool:
                if value.lower() not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                changes[key] = value.lower() in ("1", "true", "yes", "on")
            else:
                changes[key] = kind(value)
        except ValueError:
            raise ValueError(f"--option {pair!r}: {key} must be of type {kind.__name__}") from None
    if changes.get("layout", "pieces") not in ("pieces", "cursor"):
        raise ValueError(f"--option layout={changes['layout']}: layout is pieces or cursor")
    return replace(opts, **changes)


def _settings(args):
    from ckls.config import Settings, from_cli, load_toml

    s = Settings().merged(load_toml(os.path.join(args.repo, "ckls.toml")), strict=True)[0]
    return s.merged(from_cli(args), strict=True)[0]


class Bar:
    """One redrawn stderr line: [#####-----] plus the progress fields; plain lines when stderr is no terminal."""

    def __init__(self, stream=sys.stderr, width: int = 24, every_step: bool = False):
        self.stream, self.width = stream, width
        self.tty = stream.isatty() and not every_step
        self.every_step = every_step
        self.last_plain = 0.0

    def __call__(self, p) -> None:
        if p.phase == "warning":  # its own line, never overdrawn
            self.stream.write(("\n" if self.tty else "") + f"ckls: warning: {p.message}\n")
            self.stream.flush()
            return
        # the bar is the step count beside it; when the time budget runs out first, the line says so instead of
        # a full bar beside "step 23/1356"
        frac = p.step / p.total if p.total else (p.fraction or 0.0)
        frac = min(1.0, max(0.0, frac)) if math.isfinite(frac) else 0.0  # whatever a state file claimed
        fill = int(frac * self.width)
        budget = p.fraction if p.fraction is not None and math.isfinite(p.fraction) else 0.0
        extra = f", time budget {min(1.0, budget):.0%} used" if p.total and budget > frac + 0.01 else ""
        line = f"[{'#' * fill}{'-' * (self.width - fill)}] {p.line()}{extra}"[:300]
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(100))
        elif self.every_step or p.phase != "training" or time.monotonic() - self.last_plain > 1.0 \
                or p.step == p.total:
            self.stream.write(line + "\n")
            self.last_plain = time.monotonic()
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def table(summ) -> str:
    def f(x, fmt="{:.3f}"):
        return "-" if x is None else fmt.format(x)

    rows = [
        ("status", summ.status + (f" ({summ.message})" if summ.message else "")),
        ("round", str(summ.round)),
        ("files", f"{summ.files} used, {summ.fresh} new/changed, {summ.replayed} replayed, {summ.heldout} held out"),
        ("dropped", ", ".join(f"{k} {v}" for k, v in sorted(summ.dropped.items())) or "-"),
        ("samples", f"{summ.windows} windows"),
        ("steps", f"{summ.steps}" + (f" (resumed at {summ.resumed_at})" if summ.resumed_at else "")
         + (" (early stop)" if summ.early_stopped else "")),
        ("tokens", f"{summ.tokens} in {summ.train_s:.1f} s"
         + (f" ({summ.tokens / summ.train_s:.0f} tok/s)" if summ.train_s > 0 else "")),
        ("train loss", f"{f(summ.loss_first)} -> {f(summ.loss_last)}"),
        ("held-out loss", f"{f(summ.heldout_before)} -> {f(summ.heldout_best)}"
         + (f" (evaluations {summ.eval_s:.1f} s)" if summ.eval_s > 0 else "")),
        ("adapter", summ.adapter or "-"),
    ] + [("warning", w) for w in summ.warnings]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def main(args) -> int:
    from ckls.runtime import ModelError
    from ckls.tune.loop import TuneOptions, Tuner, TuneUnavailable
    from ckls.tune.scheduler import Activity

    if not os.path.isdir(args.repo):
        print(f"ckls: {args.repo} is not a folder", file=sys.stderr)
        return 2
    s = _settings(args)
    state_dir = args.state_dir or (os.path.expanduser(s.tune_dir) if s.tune_dir else None)
    mode = "none" if args.quiet else args.progress
    bar = None if mode == "none" or args.status else Bar(every_step=mode == "lines")
    # nobody types into a command line run: train between nothing, but stop cleanly on a signal
    activity = Activity("always")
    try:
        opts = expert_options(TuneOptions.from_settings(s), args.option)
    except ValueError as exc:
        print(f"ckls: {exc}", file=sys.stderr)
        return 2
    if args.exclude_eval_split:
        from dataclasses import replace

        from ckls.fim.split import held_out_files
        opts = replace(opts, exclude=tuple(held_out_files(args.repo, args.exclude_eval_split)))
    tuner = Tuner(args.repo, s.resolved_model_path, opts, state_dir, activity, on_progress=bar)
    if args.status:
        print(json.dumps(tuner.status(), indent=1))
        return 0

    def stop(signum, frame):
        activity.stop()

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        summ = tuner.run()
    except (TuneUnavailable, ModelError) as exc:
        print(f"ckls: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        if bar:
            bar.close()
    if args.json:
        print(json.dumps(summ.as_dict()))
    else:
        print(table(summ))
    return 0 if summ.status in ("trained", "up to date") else 3 if summ.status == "stopped" else 1
