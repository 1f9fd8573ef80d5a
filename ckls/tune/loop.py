"""One tuning round: workspace → plan (new/changed files + replay) → token windows → LoRA steps on the native
trainer, yielding to the user, checkpointing every step, evaluating held-out files, stopping early → adapter
GGUF (atomic) → handed to whoever serves completions.

Files in the state folder (`state_dir`):
  state.json      what earlier rounds trained on (path -> content hash), the held-out files, round summaries
  checkpoint.npz  the unfinished round: adapter, optimizer moments, step counter, plan (deleted when it ends)
  adapter.gguf    the adapter to serve (best held-out loss of the last finished round)
The base model file is only read. A damaged state.json or checkpoint.npz is renamed <name>.corrupt-<time> (kept
for a look, out of the next run's way) with a warning that says what was lost and where the round goes on.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from ckls import atomic
from ckls.stats import bootstrap
from ckls.config import workspace_state_dir
from ckls.runtime import Cancelled
from ckls.tune import checkpoint, dataset, statelock
from ckls.runtime.adapter_gguf import read_adapter, write_adapter
from ckls.runtime.lora import TARGET_ORDER
from ckls.tune.scheduler import Activity

STATE_VERSION = 1


class TuneUnavailable(RuntimeError):
    """This build cannot train (the native LoRA trainer is missing) or the model cannot be tuned."""


# the fewest held-out completions the serving gate judges an adapter by: a bootstrap of a handful says nothing
GATE_MIN_WINDOWS = 12


@dataclass
class TuneOptions:
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = TARGET_ORDER
    lr: float = 1e-4
    warmup: int = 10
    weight_decay: float = 0.0
    clip: float = 1.0
    seq_len: int = 1024
    budget_s: float = 600.0      # work per round: steps and held-out evaluations (not the waits for the user)
    max_steps: int = 0           # 0: epochs * windows
    epochs: int = 2
    eval_every: int = 20         # steps between held-out evaluations
    patience: int = 6            # evaluations without improvement before stopping
    heldout_frac: float = 0.05
    heldout_windows: int = 16
    replay: float = 1.0          # replayed unchanged files per new/changed file
    fim_rate: float = 0.9
    layout: str = "cursor"       # cursor: server-shaped examples (seq_len ~1024); pieces: seq_len cuts, random FIM
    example_chars: int = 300     # cursor layout: one example per this many characters of a file...
    max_examples: int = 64       # ...at most this many per file...
    context_chars: int = 3500    # ...each with at most this much context (head + prefix + suffix)
    middle_only: bool = False    # cursor layout: the examples alone, loss on their middles only
    relayout: bool = True        # new FIM cuts, window boundaries and order every epoch (else the first epoch's, repeated)
    threads: int = 1
    checkpoint_every: int = 1    # steps; kill -9 then loses at most this many
    seed: int = 0
    exclude: tuple[str, ...] = ()  # repo-relative paths never trained on nor used as held-out (a measurement's test set)
    retrieval: bool = False      # cursor examples carry retrieved windows, as the server's prompts do with retrieval on
    gate_windows: int = 48       # held-out completions the served adapter must make likelier (0: no gate)...
    gate_min_windows: int = GATE_MIN_WINDOWS  # ...and with fewer the gate cannot judge: nothing is served
    exact: bool = False          # True: the frozen weights' products in f32; False: on the server's integer
                                 # kernels (faster; the same held-out curve, bench/RESULTS.md)

    @classmethod
    def from_settings(cls, s) -> "TuneOptions":
        return cls(rank=s.tune_rank, alpha=s.tune_alpha, lr=s.tune_lr, seq_len=s.tune_seq_len,
                   budget_s=float(s.tune_budget_s), max_steps=s.tune_max_steps,
                   threads=s.tune_threads or min(os.cpu_count() or 1, 8), retrieval=s.retrieval)


@dataclass
class Progress:
    phase: str                  # scanning | loading | training | evaluating | waiting | saving | done
    step: int = 0
    total: int = 0
    loss: float | None = None
    heldout_loss: float | None = None
    tokens_per_s: float = 0.0
    eta_s: float | None = None
    message: str = ""
    fraction: float | None = None  # of the round done: steps of the planned total, or budget used, the larger

    def line(self) -> str:
        parts = [self.phase]
        if self.total:
            parts.append(f"step {self.step}/{self.total}")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.3f}")
        if self.heldout_loss is not None:
            parts.append(f"held-out {self.heldout_loss:.3f}")
        if self.tokens_per_s:
            parts.append(f"{self.tokens_per_s:.0f} tok/s")
        if self.eta_s is not None:
            parts.append(f"ETA {_fmt_s(self.eta_s)}")
        if self.message:
            parts.append(self.message)
        return ", ".join(parts)


@dataclass
class Summary:
    status: str                 # trained | up to date | stopped | no data | failed
    round: int = 0
    files: int = 0
    fresh: int = 0
    replayed: int = 0
    heldout: int = 0
    dropped: dict = field(default_factory=dict)
    windows: int = 0
    steps: int = 0
    resumed_at: int = 0
    tokens: int = 0
    train_s: float = 0.0        # in training steps (tokens / train_s is the training speed)
    eval_s: float = 0.0         # in held-out evaluations (train_s + eval_s is what the budget bounds)
    loss_first: float | None = None
    loss_last: float | None = None
    heldout_before: float | None = None
    heldout_best: float | None = None
    early_stopped: bool = False
    gate: dict | None = None    # the serving gate: held-out middles' NLL without / with the adapter, paired
    adapter: str | None = None
    message: str = ""
    warnings: list = field(default_factory=list)  # damaged state set aside: what was lost, where the round went on

    def as_dict(self) -> dict:
        return asdict(self)


def _count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _finite_or_none(x) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x))


def _short(x, n: int = 40) -> str:
    t = repr(x)
    return t if len(t) <= n else t[:n] + "..."


def state_problem(st) -> str | None:
    """Why a state.json (already parsed) cannot be used, or None. Another model or adapter shape is no damage
    (load_state starts a new history for it)."""
    if not isinstance(st, dict):
        return f"not an object but {type(st).__name__}"
    if st.get("version") != STATE_VERSION:
        return None
    if not (isinstance(st.get("trained"), dict) and all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in st["trained"].items())):
        return "its record of trained files is damaged"
    if not (isinstance(st.get("heldout"), list) and all(isinstance(p, str) for p in st["heldout"])):
        return "its list of held-out files is damaged"
    if not (isinstance(st.get("rounds"), list) and all(isinstance(r, dict) for r in st["rounds"])):
        return "its round history is damaged"
    return None


def checkpoint_meta_problem(meta: dict) -> str | None:
    """Why a checkpoint's meta record cannot be resumed from, or None (the arrays are checked against the adapter
    by checkpoint_arrays_problem)."""
    if not _count(meta.get("step")):
        return f"its step {_short(meta.get('step'))} is not a count"
    if not _count(meta.get("bad")):
        return f"its evaluation counter {_short(meta.get('bad'))} is not a count"
    for k in ("best", "loss_first", "heldout_before"):
        if not _finite_or_none(meta.get(k)):
            return f"its {k} {_short(meta.get(k))} is not a finite number"
    if not isinstance(meta.get("seed"), int) or isinstance(meta.get("seed"), bool):
        return f"its seed {_short(meta.get('seed'))} is not an integer"
    t = meta.get("trainer")
    if not (isinstance(t, dict) and _count(t.get("adam_step"))):
        return "its optimizer step is missing or not a count"
    for k in ("fresh", "replay", "heldout"):
        if not (isinstance(meta.get(k), list) and all(isinstance(p, str) for p in meta[k])):
            return f"its list of {k} files is damaged"
    return None


def checkpoint_arrays_problem(arrays: dict, adapter, step: int, total: int) -> str | None:
    """Why a checkpoint's arrays (and step) cannot go on in this round, or None."""
    for k in ("params", "adam_m", "adam_v"):
        x = arrays.get(k)
        want = adapter.buffer(k).shape
        if x is None:
            return f"{k} is missing"
        if x.shape != want or x.dtype.kind != "f":
            return f"{k} is {x.dtype} of shape {list(x.shape)[:4]}, the adapter's is float32 of {list(want)}"
        if not np.isfinite(x).all():
            return f"{k} holds NaN or infinite values"
    if (arrays["adam_v"] < 0).any():
        return "adam_v holds negative second moments"
    if step > total:
        return f"its step {step} is past the {total} steps of this round"
    return None


def _fmt_s(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def default_state_dir(root: str) -> str:
    return workspace_state_dir("tune", root)


def model_identity(path: str) -> dict:
    st = os.stat(path)
    return {"path": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


# ---- the native trainer (ckls.runtime.lora) -------------------------------------------------------------------
def runtime_lora():
    try:
        from ckls.runtime import lora
    except ImportError as exc:
        raise TuneUnavailable("this build of ckls has no LoRA trainer (ckls.runtime.lora)") from exc
    return lora


def new_adapter(model, opts: TuneOptions, targets: tuple[str, ...] | None = None, rank: int | None = None,
                alpha: float | None = None):
    """A fresh adapter (A random, B zero: the model's outputs are unchanged until training moves B)."""
    lora = runtime_lora()
    return lora.LoraAdapter.for_model(model, rank=rank or opts.rank, alpha=opts.alpha if alpha is None else alpha,
                                      targets=targets or opts.targets, seed=opts.seed)


# ---- evaluation -----------------------------------------------------------------------------------------------
class Stopped(Exception):
    """The activity was stopped (ckls.tune.stop, Ctrl-C) while the round waited for the cores."""


def heldout_loss(model, windows, activity: Activity | None = None) -> float | None:
    """Mean next-token cross-entropy of the held-out windows with the model's current adapter (float64 numpy
    over the runtime's logits; one forward per window, no gradients). With an activity, each forward polls its
    cancel flag like a training step: a keystroke gets the cores back, and the window is evaluated again (the same
    arithmetic) once the activity gives the turn back; Stopped if it stops meanwhile."""
    if not windows:
        return None
    per = window_losses(model, windows, activity)
    return sum(t for t, _ in per) / max(sum(c for _, c in per), 1)


def window_losses(model, windows, activity: Activity | None = None) -> list[tuple[float, int]]:
    """(summed cross-entropy, targets) of each window, as heldout_loss computes them."""
    out = []
    for toks, tgts in windows:
        while True:
            if activity is not None and not activity.wait_turn():
                raise Stopped()
            try:
                logits = model.eval(toks, pos0=0, logits_all=True,
                                    cancel=activity.cancel if activity is not None else None)
                break
            except Cancelled:
                activity.yielded()
        logits = logits.astype(np.float64)
        m = logits.max(axis=1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(logits - m).sum(axis=1)))
        ok = tgts >= 0
        out.append((float((lse[ok] - logits[np.nonzero(ok)[0], tgts[ok]]).sum()), int(ok.sum())))
    return out


def serving_gate(model, lora, adapter_path: str, windows, activity: Activity | None = None,
                 min_windows: int = GATE_MIN_WINDOWS) -> dict:
    """Whether an adapter makes the held-out completions likelier: for middle-only cursor windows of the held-out
    files (the server's prompt, the loss on what the user wrote at the cursor), the NLL per middle token without
    and with the adapter, paired per window. It passes when the mean improvement's 95% bootstrap interval lies
    above 0 — the held-out window loss alone did not predict completion quality (bench/RESULTS.md)."""
    model.set_adapter(None)
    base = window_losses(model, windows, activity)
    model.set_adapter(lora.LoraAdapter.from_gguf(model, adapter_path))
    try:
        tuned = window_losses(model, windows, activity)
    finally:
        model.set_adapter(None)
    return gate_verdict(np.asarray([t / max(c, 1) for t, c in base]), np.asarray([t / max(c, 1) for t, c in tuned]),
                        min_windows)


def gate_verdict(b: np.ndarray, a: np.ndarray, min_windows: int) -> dict:
    """The gate's figures from the per-window NLL without (b) and with (a) the adapter: it passes when there are at
    least min_windows pairs (a bootstrap of a handful says nothing: one window gives a zero-width interval) and the
    95% interval of the mean gain lies above 0."""
    lo, hi = bootstrap(b - a)
    return {"windows": len(b), "nll_base": float(b.mean()) if len(b) else math.nan,
            "nll_adapter": float(a.mean()) if len(a) else math.nan, "gain": float((b - a).mean()) if len(b) else 0.0,
            "ci95": [lo, hi], "better": int((a < b).sum()), "passed": len(b) >= min_windows and lo > 0.0}


def gate_windows(maker, held: list[tuple[str, str]], n: int, retrieve=None) -> list:
    """Up to n middle-only cursor windows of the held-out files for the gate: more cursor draws over the same files
    (other seeds, at most 8) while a small repository's few held-out files give fewer than n at one draw."""
    out, seen = [], set()
    for s in range(8):
        for w in maker.cursor_windows(held, 4242 + s, 1.0, middle_only=True, retrieve=retrieve):
            key = tuple(w[0])
            if len(w[0]) > 1 and key not in seen:
                seen.add(key)
                out.append(w)
        if len(out) >= n:
            break
    return out[:n]


# ---- the round ------------------------------------------------------------------------------------------------
class EpochWindows:
    """The training windows of each epoch, in that epoch's order. With `relayout`, every epoch lays the files out
    afresh (other FIM cuts, other window boundaries, another order): repeating one layout lets the adapter learn
    those exact token sequences (loss near 0 on them) rather than the code, which another cut of the same file
    already shows. A function of (seed, epoch) only, so a resumed round sees the same windows."""

    def __init__(self, maker, files: list[tuple[str, str]], seed: int, opts: TuneOptions, retrieve=None):
        self.maker, self.files, self.seed, self.o, self.retrieve = maker, files, seed, opts, retrieve
        self._epoch, self._windows, self._order = None, [], []

    def of(self, epoch: int) -> list:
        o = self.o
        e = epoch if o.relayout else 0
        if e != self._epoch:
            s = self.seed + 7919 * e
            if o.layout == "cursor":
                w = self.maker.cursor_windows(self.files, s, o.fim_rate, example_chars=o.example_chars,
                                              max_examples=o.max_examples, context_chars=o.context_chars,
                                              middle_only=o.middle_only, retrieve=self.retrieve)
            else:
                w = self.maker.windows(self.maker.encode([t for _, t in self.files], s))
            if w or self._epoch is None:  # (a later layout with nothing that fits keeps the one before)
                self._windows, self._order = w, np.random.default_rng(s).permutation(len(w))
            self._epoch = e
        return self._windows

    def window(self, epoch: int, i: int):
        w = self.of(epoch)
        return w[self._order[i % len(w)]]


def _total(o: TuneOptions, per_epoch: int) -> int:
    return o.max_steps or max(1, o.epochs * per_epoch)


class Tuner:
    def __init__(self, root: str, model_path: str, opts: TuneOptions | None = None, state_dir: str | None = None,
                 activity: Activity | None = None, on_progress: Callable[[Progress], None] | None = None,
                 on_adapter: Callable[[str], None] | None = None):
        self.root = os.path.realpath(root)
        self.model_path = model_path
        self.opts = opts or TuneOptions()
        self.state_dir = state_dir or default_state_dir(self.root)
        self.activity = activity or Activity("always")
        self.on_progress = on_progress or (lambda p: None)
        self.on_adapter = on_adapter or (lambda path: None)
        self.last = Progress("idle")
        self.lock = threading.Lock()
        self.warnings: list[str] = []  # of the current run

    def _warn(self, message: str) -> None:
        import logging

        logging.getLogger("ckls.tune").warning("%s", message)
        self.warnings.append(message)
        self._report(Progress("warning", message=message))

    def _set_aside(self, path: str, problem: str, lost: str, goes_on: str) -> None:
        """Renames a damaged state file out of the way and says so: what was wrong, what is lost, what happens."""
        name = os.path.basename(path)
        try:
            aside = os.path.basename(checkpoint.set_aside(path))
        except OSError as exc:
            aside = None
            try:
                os.unlink(path)
            except OSError:
                raise TuneUnavailable(f"{path} is damaged ({problem}) and cannot be moved aside: {exc.strerror}") \
                    from None
        self._warn(f"{name} was damaged ({problem[:160]}); " + (f"kept as {aside}" if aside else "removed")
                   + f" in {self.state_dir[-120:]}. Lost: {lost}. {goes_on}")

    @property
    def state_path(self) -> str:
        return os.path.join(self.state_dir, "state.json")

    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.state_dir, "checkpoint.npz")

    @property
    def adapter_path(self) -> str:
        return os.path.join(self.state_dir, "adapter.gguf")

    def _report(self, p: Progress) -> None:
        self.last = p
        self.on_progress(p)

    def load_state(self) -> dict:
        try:
            st = checkpoint.read_json(self.state_path, {}, strict=True)
            problem = state_problem(st)
        except checkpoint.Damaged as exc:
            problem = str(exc)
        if problem is not None:
            self._set_aside(self.state_path, problem, "the record of earlier rounds (trained files, held-out files, "
                            "summaries)", "This round starts a new record where every file counts as new; the "
                            "adapter learnt so far is kept and built on.")
            st = {}
        ident = model_identity(self.model_path)
        o = self.opts
        shape = {"rank": o.rank, "alpha": o.alpha, "targets": list(o.targets)}
        if st.get("version") != STATE_VERSION or st.get("model") != ident or st.get("adapter_shape") != shape:
            # another base model or adapter shape: what was learnt does not carry over
            st = {"version": STATE_VERSION, "model": ident, "adapter_shape": shape, "trained": {}, "heldout": [],
                  "rounds": []}
        return st

    def status(self) -> dict:
        try:
            st = checkpoint.read_json(self.state_path, {}, strict=True)
            damaged = {"state.json": state_problem(st)} if state_problem(st) else {}
        except checkpoint.Damaged as exc:
            damaged = {"state.json": str(exc)}
        if damaged:
            st = {}
        ck = checkpoint.read_meta(self.checkpoint_path)
        if ck is not None and checkpoint_meta_problem(ck):
            damaged["checkpoint.npz"] = checkpoint_meta_problem(ck)
            ck = None
        elif ck is None and os.path.exists(self.checkpoint_path):
            damaged["checkpoint.npz"] = "not a readable checkpoint"
        rounds = st.get("rounds", [])
        return {"state_dir": self.state_dir, "rounds": len(rounds),
                "trained_files": len(st.get("trained", {})),
                "last_round": (rounds or [None])[-1],
                "adapter": self.adapter_path if os.path.isfile(self.adapter_path) else None,
                "unfinished_step": ck["step"] if ck else None,
                "damaged": damaged,  # set aside (and said so) by the next round
                "set_aside": sorted(f for f in os.listdir(self.state_dir) if ".corrupt-" in f)
                if os.path.isdir(self.state_dir) else [],
                "tuning_pid": statelock.holder(self.state_dir),  # another process's round, or this one's
                "progress": asdict(self.last)}

    def run(self) -> Summary:
        with self.lock:
            self.warnings = []
            summ = self._run()
            summ.warnings = list(self.warnings)
            return summ

    def _run(self) -> Summary:
        act = self.activity
        if act.on_battery():  # not even the scan and the tokenizing until the computer is on mains power
            self._report(Progress("waiting", message="paused: on battery"))
            if not act.wait_turn():
                return Summary("stopped", message="stopped while paused on battery")
        os.makedirs(self.state_dir, exist_ok=True)
        try:
            lock = statelock.StateLock(self.state_dir).acquire()
        except statelock.Busy as exc:
            raise TuneUnavailable(str(exc)) from None
        try:
            return self._locked_run()
        except Stopped:  # during the scan or the layout, before any step
            summ = Summary("stopped", message="stopped while preparing the round (before any step)")
            self._report(Progress("done", message=summ.message))
            return summ
        finally:
            lock.release()

    def _pace(self) -> None:
        """Called between files while scanning and laying out samples (seconds of Python for a large repository):
        gives way while the user is active or the computer is on battery, as a training step does."""
        act = self.activity
        if (act.cancel.is_set or act.on_battery()) and not act.wait_turn():
            raise Stopped()

    def _locked_run(self) -> Summary:
        o = self.opts
        self._report(Progress("scanning", message=self.root))
        st = self.load_state()
        sc = dataset.scan(self.root, pace=self._pace)
        if o.exclude:
            skip, n = set(o.exclude), len(sc.files)
            sc.files = [f for f in sc.files if f.path not in skip]
            sc.dropped["excluded"] = n - len(sc.files)
        by_path = {f.path: f for f in sc.files}
        held = dataset.choose_heldout(sorted(by_path), o.heldout_frac, previous=st["heldout"])
        ck = self._load_checkpoint(st)
        summ = Summary("trained", round=len(st["rounds"]) + 1, files=len(sc.files), heldout=len(held),
                       dropped=dict(sc.dropped))
        if ck is not None:  # an unfinished round: same plan, same sample order, continue at its step
            meta = ck[1]
            fresh = [by_path[p] for p in meta["fresh"] if p in by_path]
            replay = [by_path[p] for p in meta["replay"] if p in by_path]
            held = [p for p in meta["heldout"] if p in by_path]
            seed = meta["seed"]
        else:
            rng = np.random.default_rng(o.seed + len(st["rounds"]))
            fresh, replay = dataset.plan_round(sc.files, st["trained"], held, o.replay, rng)
            seed = int(rng.integers(1 << 31))
        summ.fresh, summ.replayed = len(fresh), len(replay)
        if not fresh and ck is None:
            summ.status = "up to date" if st["trained"] else "no data"
            summ.adapter = self.adapter_path if os.path.isfile(self.adapter_path) else None
            summ.message = "no new or changed files" if st["trained"] else "no usable source files"
            self._report(Progress("done", message=summ.message))
            return summ

        self._report(Progress("loading", message=os.path.basename(self.model_path)))
        from ckls.runtime import load_model

        lora = runtime_lora()
        model = load_model(self.model_path, n_ctx=o.seq_len, n_threads=o.threads)
        try:
            return self._train(model, lora, st, ck, fresh, replay, held, by_path, seed, summ)
        finally:
            model.set_adapter(None)
            model.close()

    def _load_checkpoint(self, st: dict):
        """The unfinished round's (arrays, meta), None when there is none; a damaged one is set aside."""
        try:
            ck = checkpoint.load(self.checkpoint_path)
            problem = None if ck is None else checkpoint_meta_problem(ck[1])
        except checkpoint.Damaged as exc:
            ck, problem = None, str(exc)
        if problem is not None:
            self._set_aside(self.checkpoint_path, problem, "the unfinished round's steps",
                            "This round plans afresh and starts at step 0 from the adapter of the last finished "
                            "round.")
            return None
        if ck is not None and (ck[1].get("model") != st["model"] or ck[1].get("adapter_shape") != st["adapter_shape"]):
            self._warn("the unfinished round was for another base model or adapter shape; it is dropped and this "
                       "round starts at step 0")
            return None
        return ck

    def _train(self, model, lora, st, ck, fresh, replay, held, by_path, seed, summ: Summary) -> Summary:
        o = self.opts
        maker = dataset.SampleMaker(model.tokenizer, o.seq_len, fim_rate=o.fim_rate, pace=self._pace)
        train_files = [(f.path, f.text) for f in fresh + replay]
        train_retrieve = held_retrieve = None
        if o.retrieval and o.layout == "cursor":  # as the server's index: the repository's other files (training
            # examples never see held-out text; held-out examples see the whole repository, as a user's file does)
            from ckls.index.windows import package_retriever
            train_retrieve = package_retriever([{"path": p, "text": f.text} for p, f in by_path.items()
                                                if p not in set(held)])
            held_retrieve = package_retriever([{"path": p, "text": f.text} for p, f in by_path.items()])
        if o.layout == "cursor":  # what the server asks: examples at editor cursors, held-out ones too
            held_w = [w for w in maker.cursor_windows([(p, by_path[p].text) for p in held], 12345, 1.0,
                                                      middle_only=o.middle_only, retrieve=held_retrieve)
                      if len(w[0]) > 1][: o.heldout_windows]
        else:
            held_w = maker.windows(maker.encode([by_path[p].text for p in held], 12345))[: o.heldout_windows]
        gate_w = []
        if o.gate_windows and held and maker.has_fim:  # what serving is judged on: middles at held-out cursors
            gate_w = gate_windows(maker, [(p, by_path[p].text) for p in held], o.gate_windows, held_retrieve)
        epochs = EpochWindows(maker, train_files, seed, o, train_retrieve)
        windows = epochs.of(0)
        summ.windows = len(windows)
        if not windows:
            summ.status, summ.message = "no data", "the new files give no tokens"
            if os.path.exists(self.checkpoint_path):  # its files are gone: that round cannot go on
                os.unlink(self.checkpoint_path)
            return summ
        adapter = new_adapter(model, o)
        problem = ck and checkpoint_arrays_problem(ck[0], adapter, ck[1]["step"], _total(o, len(windows)))
        if problem:
            n = ck[1]["step"]
            self._set_aside(self.checkpoint_path, problem, "the unfinished round's "
                            + (f"{n} steps" if n <= _total(o, len(windows)) else "steps"),
                            "This round starts again at step 0 with the same files, from the adapter of the last "
                            "finished round.")
            ck = None
        if ck is None and os.path.isfile(self.adapter_path):
            try:  # keep what earlier rounds learnt and build on it
                adapter.load_weights(read_adapter(self.adapter_path))
            except (ValueError, OSError) as exc:
                summ.message = f"previous adapter ignored: {exc}"
        trainer = lora.LoraTrainer(model, adapter, o.seq_len, lr=o.lr, weight_decay=o.weight_decay, clip=o.clip,
                                   exact=o.exact)
        try:
            return self._steps(model, adapter, trainer, st, ck, fresh, replay, held, seed, epochs, held_w, summ,
                               gate_w, lora)
        finally:
            trainer.close()

    def _steps(self, model, adapter, trainer, st, ck, fresh, replay, held, seed, epochs, held_w, summ,
               gate_w=(), lora=None):
        o, act = self.opts, self.activity
        now = act.clock.now  # the budget's seconds and act.waited_s (subtracted from them) on the one clock
        per_epoch = len(epochs.of(0))
        total = _total(o, per_epoch)
        step, best, bad, first_loss = 0, None, 0, None
        heldout_before = None
        if ck is not None:
            arrays, meta = ck
            trainer.load_state(dict(meta["trainer"], **arrays))  # (checked: the arrays fit the adapter)
            step, best, bad = meta["step"], meta["best"], meta["bad"]
            first_loss, heldout_before = meta.get("loss_first"), meta.get("heldout_before")
            summ.resumed_at = step
        model.set_adapter(adapter)
        stopped, t_eval = False, 0.0  # t_eval: seconds of held-out forwards (with the steps, what budget_s bounds)
        if heldout_before is None:
            self._report(Progress("evaluating", step, total))
            t0, w0 = now(), act.waited_s
            try:
                heldout_before = heldout_loss(model, held_w, act)
            except Stopped:
                stopped = True
            t_eval += now() - t0 - (act.waited_s - w0)
            if best is None:
                best = heldout_before

        def save_ck():
            state = trainer.state()
            tmeta = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
            arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
            checkpoint.save(self.checkpoint_path, arrays, {
                "step": step, "best": best, "bad": bad, "seed": seed, "trainer": tmeta, "model": st["model"],
                "adapter_shape": st["adapter_shape"], "fresh": [f.path for f in fresh],
                "replay": [f.path for f in replay], "heldout": held, "loss_first": first_loss,
                "heldout_before": heldout_before})

        best_path = os.path.join(self.state_dir, "best.gguf")
        arch = model.arch
        t_train, tokens, last_loss = 0.0, 0, None

        def done(at: int) -> float:
            return min(1.0, max(at / total, (t_train + t_eval) / o.budget_s if o.budget_s > 0 else 0.0))

        while not stopped and step < total and t_train + t_eval < o.budget_s:
            if act.on_battery():
                self._report(Progress("waiting", step, total, last_loss, best, message="paused: on battery"))
            if not act.wait_turn():
                stopped = True
                break
            try:
                toks, tgts = epochs.window(step // per_epoch, step % per_epoch)  # a new epoch lays files out again
            except Stopped:
                stopped = True
                break
            t0 = now()
            try:
                loss = trainer.step(toks, tgts, cancel=act.cancel)
            except Cancelled:
                act.yielded()
                t_train += now() - t0
                self._report(Progress("waiting", step, total, last_loss, best, 0.0, None, "user active"))
                continue
            lr = o.lr * min(1.0, (step + 1) / max(1, o.warmup))
            trainer.optimizer_step(lr)
            dt = now() - t0
            t_train += dt
            step += 1
            tokens += len(toks)
            last_loss = float(loss)
            first_loss = last_loss if first_loss is None else first_loss
            evaluate = held_w and (step % o.eval_every == 0 or step == total)
            if evaluate:
                self._report(Progress("evaluating", step, total, last_loss, best, fraction=done(step)))
                t0, w0 = now(), act.waited_s
                try:
                    h = heldout_loss(model, held_w, act)
                except Stopped:  # this step's update is in the checkpoint below; its evaluation is skipped
                    stopped = True
                    break
                finally:
                    t_eval += now() - t0 - (act.waited_s - w0)  # the forwards, not the waits
                if best is None or h < best - 1e-4:
                    best, bad = h, 0
                    write_adapter(best_path, adapter.to_weights(arch, {"ckls.tune.step": step}))
                else:
                    bad += 1
            if step % o.checkpoint_every == 0 or step == total:
                save_ck()
            tps = tokens / t_train if t_train > 0 else 0.0
            left = min((total - step) * ((t_train + t_eval) / max(1, step - summ.resumed_at)),
                       o.budget_s - t_train - t_eval)
            self._report(Progress("training", step, total, last_loss, best, tps, max(0.0, left),
                                  fraction=done(step)))
            if held_w and bad >= o.patience:
                summ.early_stopped = True
                break
        summ.steps, summ.tokens, summ.train_s, summ.eval_s = step, tokens, t_train, t_eval
        summ.loss_first, summ.loss_last = first_loss, last_loss
        summ.heldout_before, summ.heldout_best = heldout_before, best
        if stopped:
            save_ck()
            summ.status, summ.message = "stopped", f"stopped at step {step}; the next run resumes there"
            self._report(Progress("done", step, total, last_loss, best, message=summ.message))
            return summ
        # the round is over: serve the best adapter seen (held-out), else the last
        self._report(Progress("saving", step, total, last_loss, best))
        serve = held_w and os.path.isfile(best_path) and best is not None and best < (heldout_before or math.inf)
        if serve and gate_w:
            self._report(Progress("evaluating", step, total, last_loss, best, message="serving gate"))
            try:
                summ.gate = serving_gate(model, lora, best_path, gate_w, self.activity, o.gate_min_windows)
            except Stopped:  # the gate runs again, whole, when the round resumes
                save_ck()
                summ.status, summ.message = "stopped", f"stopped at step {step}; the next run resumes there"
                self._report(Progress("done", step, total, last_loss, best, message=summ.message))
                return summ
            if not summ.gate["passed"]:
                g = summ.gate
                serve = False
                summ.message = (f"only {g['windows']} held-out completions to judge the adapter by (the gate needs "
                                f"{o.gate_min_windows}): not served" if g["windows"] < o.gate_min_windows else
                                f"held-out completions not likelier with the adapter (NLL {g['nll_base']:.3f} -> "
                                f"{g['nll_adapter']:.3f}, 95% interval of the gain {g['ci95'][0]:+.3f} .. "
                                f"{g['ci95'][1]:+.3f}): not served")
        if serve:
            atomic.replace(best_path, self.adapter_path)  # (written and fsynced by write_adapter)
        elif not held_w:
            write_adapter(self.adapter_path, adapter.to_weights(arch, {"ckls.tune.step": step}))
        elif not os.path.isfile(self.adapter_path) and not summ.message:
            # held-out loss never improved on the base model: serve no adapter rather than a worse one
            summ.message = "held-out loss did not improve; no adapter"
        for f in fresh + replay:
            st["trained"][f.path] = f.sha1
        st["heldout"] = held
        summ.adapter = self.adapter_path if os.path.isfile(self.adapter_path) else None
        summ.warnings = list(self.warnings)  # (the round's record keeps them too)
        st["rounds"].append({k: v for k, v in summ.as_dict().items() if k != "dropped"} | {"time": time.time()})
        checkpoint.write_json(self.state_path, st)
        try:
            os.unlink(self.checkpoint_path)
        except FileNotFoundError:
            pass
        if os.path.exists(best_path):
            os.unlink(best_path)
        self._report(Progress("done", step, total, last_loss, best, message=summ.status))
        if summ.adapter:
            self.on_adapter(summ.adapter)
        return summ
