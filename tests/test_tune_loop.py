"""Tuning rounds end to end on the native LoRA trainer: a real git repository, a synthetic model, rounds that
train, stop early, resume and go incremental; the adapter our runtime serves matches the float64 reference with
the same adapter. Skipped (with that reason) only while this build has no ckls.runtime.lora."""
import os
import threading
import time

import numpy as np
import pytest

import reference_forward as rf
from tune_fixtures import source

lora = pytest.importorskip("ckls.runtime.lora", reason="ckls.runtime.lora (the native LoRA trainer) is not in this build")

from ckls.runtime import load_model  # noqa: E402
from ckls.tune import checkpoint  # noqa: E402
from ckls.runtime.adapter_gguf import check_against_base, read_adapter, write_adapter  # noqa: E402
from ckls.runtime.lora import LoraAdapter  # noqa: E402
from ckls.tune.loop import TuneOptions, Tuner  # noqa: E402
from ckls.tune.scheduler import Activity  # noqa: E402


def opts(**kw):
    # short pieces keep these rounds fast; the default layout (cursor examples) is test_default_layout_round's
    base = dict(rank=4, alpha=8.0, seq_len=32, max_steps=6, eval_every=3, threads=1, lr=1e-3, heldout_frac=0.1,
                heldout_windows=2, layout="pieces")
    base.update(kw)
    return TuneOptions(**base)


def test_rounds_train_then_go_incremental(models, repo, tmp_path):
    base = models.get("qwen2", "tiny", "f32")
    before = open(base, "rb").read()
    state = str(tmp_path / "state")
    seen = []
    t = Tuner(repo, base, opts(), state, on_progress=seen.append)
    s = t.run()
    print(s)
    assert s.status == "trained" and s.steps == 6 and s.fresh >= 10 and s.replayed == 0 and s.heldout == 1
    assert np.isfinite(s.loss_first) and np.isfinite(s.loss_last) and s.tokens > 0
    assert {p.phase for p in seen} >= {"scanning", "loading", "training", "evaluating", "done"}
    tr = [p for p in seen if p.phase == "training"]
    assert [p.step for p in tr] == list(range(1, 7)) and all(p.tokens_per_s > 0 and p.eta_s is not None for p in tr)
    assert not os.path.exists(t.checkpoint_path)  # a finished round leaves no checkpoint
    st = checkpoint.read_json(t.state_path)
    assert len(st["trained"]) == s.fresh and len(st["rounds"]) == 1
    if s.adapter:  # held-out loss improved: the adapter fits the base
        w = read_adapter(s.adapter)
        check_against_base(w, base)
        assert w.rank == 4 and w.alpha == 8.0 and len(w.pairs) == 2 * 7
    # nothing changed: nothing to do
    s2 = Tuner(repo, base, opts(), state).run()
    assert s2.status == "up to date" and s2.steps == 0
    # one file edited: it is trained on, with one unchanged file replayed
    target = next(p for p in st["trained"])
    with open(os.path.join(repo, target), "a") as f:
        f.write("\n\ndef more():\n    return [i * i for i in range(10)]\n")
    s3 = Tuner(repo, base, opts(max_steps=2), state).run()
    assert (s3.status, s3.fresh, s3.replayed, s3.round) == ("trained", 1, 1, 2)
    assert open(base, "rb").read() == before  # the base model file is never modified


def test_default_layout_round(models, repo, tmp_path):
    """The defaults' layout: server-shaped examples (each its own window) for training and held-out loss."""
    t = Tuner(repo, models.get("qwen2", "tiny", "f32"), TuneOptions(rank=4, max_steps=4, eval_every=2, threads=1,
                                                                     heldout_frac=0.1),
              str(tmp_path / "state"))
    s = t.run()
    print(s)
    assert t.opts.layout == "cursor" and s.status == "trained" and s.steps == 4 and s.windows > 10
    assert s.heldout_before is not None and np.isfinite(s.heldout_best)


def test_early_stop_on_heldout_loss(models, repo, tmp_path):
    """A learning rate far too high: the held-out loss first drops (the random model learns token frequencies),
    then stalls or climbs; the round stops `patience` evaluations after its best and serves the adapter of the best
    one. (At 0.5 the trajectory was chaotic: a last-bit change in a product's rounding decided whether the first
    evaluation improved at all.)"""
    base = models.get("qwen2", "tiny", "f32")
    t = Tuner(repo, base, opts(lr=0.05, max_steps=200, eval_every=2, patience=2, warmup=1, gate_windows=0), str(tmp_path / "s"))
    s = t.run()
    print(s)
    assert s.early_stopped and s.steps < 200
    assert s.heldout_best < s.heldout_before
    assert read_adapter(s.adapter).meta["ckls.tune.step"] == s.steps - 2 * 2  # best, not last


def test_served_adapter_matches_reference(models, tmp_path):
    """An adapter file loaded into our runtime gives the logits of the float64 reference with that adapter."""
    from test_tune_adapter import random_adapter

    for arch in ("llama", "qwen2"):
        base = models.get(arch, "tiny", "f32")
        path = str(tmp_path / f"{arch}.gguf")
        write_adapter(path, random_adapter(base, rank=4, alpha=8.0, seed=9, targets=("attn_q", "attn_v", "ffn_up")))
        tokens = rf.prompt_tokens(1000, 20, seed=6)
        want = rf.forward(rf.load(base), tokens, lora=rf.load_lora(path))
        with load_model(base, n_ctx=64, n_threads=1) as m:
            plain = m.eval(tokens, logits_all=True)
            m.set_adapter(LoraAdapter.from_gguf(m, path))
            got = m.eval(tokens, logits_all=True)
            m.set_adapter(None)
            again = m.eval(tokens, logits_all=True)
        err = float(np.sqrt(np.mean((got - want) ** 2)) / np.std(want))
        print(f"{arch}: ckls+LoRA vs reference+LoRA rel {err:.2e}")
        assert err < 2e-5
        assert np.array_equal(plain, again)  # swapping the adapter out restores the base model exactly


def test_stop_and_resume_in_process(models, repo, tmp_path):
    base = models.get("qwen2", "tiny", "f32")
    state = str(tmp_path / "state")
    act = Activity("always")
    t = Tuner(repo, base, opts(max_steps=40, eval_every=100), state, act,
              on_progress=lambda p: act.stop() if p.phase == "training" and p.step == 5 else None)
    s = t.run()
    assert s.status == "stopped" and s.steps == 5
    assert checkpoint.load(t.checkpoint_path)[1]["step"] == 5
    s2 = Tuner(repo, base, opts(max_steps=40, eval_every=100), state).run()
    assert s2.status == "trained" and s2.resumed_at == 5 and s2.steps == 40


def test_budget_covers_heldout_evaluation(models, repo, tmp_path, fake_clock):
    """tune_budget_s bounds the round's work, held-out evaluations included, and the progress fraction follows the
    budget when the budget ends the round before its planned steps. Simulated time: every reading of the clock
    moves it on 10 ms (a step, a forward), so the figures are the same on any machine."""
    base = models.get("qwen2", "tiny", "f32")
    fake_clock.tick = 0.01
    seen = []
    s = Tuner(repo, base, opts(max_steps=100000, eval_every=1, budget_s=1.5, patience=100000),
              str(tmp_path / "state"), Activity("always", clock=fake_clock), on_progress=seen.append).run()
    print(s.steps, s.train_s, s.eval_s)
    assert s.status == "trained" and s.steps < 100000
    assert s.eval_s > 0.1 * 1.5 and s.train_s < 0.95 * 1.5  # the evaluations took their share of the budget
    assert 1.5 <= s.train_s + s.eval_s < 1.5 + 0.1  # over by at most the step or evaluation in flight
    fr = [p.fraction for p in seen if p.phase == "training"]
    assert fr == sorted(fr) and fr[-1] > 0.9 and seen[-1].step / seen[-1].total < 0.1


def test_scan_and_layout_give_way_to_the_user(models, repo, tmp_path, fake_clock):
    """Reading and laying out a large repository is seconds of Python in the server's process: it pauses while the
    user types (schedule idle) like a step does, and a stop during it ends the round cleanly. Simulated time: the
    user starts typing while the scan reads its 300th file (the power probe, asked between files, stands for that
    moment) and types for 1.5 s; the round goes on exactly when the user has been idle for idle_ms."""
    rng = np.random.default_rng(1)
    for i in range(12, 1500):
        with open(os.path.join(repo, "pkg", f"mod{i:04d}.py"), "w") as f:
            f.write(source(i, rng))
    base = models.get("qwen2", "tiny", "f32")
    probes, typing = [0], []

    def between_files():  # on mains power; at the 300th file the user starts typing, a key every 50 ms
        probes[0] += 1
        if probes[0] == 300:
            t0 = fake_clock.now()
            typing.extend(t0 + 0.05 * k for k in range(31))
            act.touch()
            for t in typing[1:]:
                fake_clock.at(t, act.touch)
        return False

    act = Activity("idle", idle_ms=400, power=between_files, recheck_s=0.0, clock=fake_clock)
    seen = []
    t = Tuner(repo, base, opts(max_steps=1, heldout_windows=1), str(tmp_path / "state"), act,
              on_progress=lambda p: seen.append((fake_clock.now(), p.phase)))
    s = t.run()
    assert s.status == "trained" and s.files >= 1500, s
    assert len(typing) == 31 and act.touched_at == typing[-1]  # every key was pressed: the scan waited them out
    assert probes[0] > 1500  # the burst came mid-scan: files were read after it
    after = [(ts, ph) for ts, ph in seen if ph not in ("scanning", "waiting")]
    assert after and after[0][0] >= typing[-1] + 0.4 - 1e-9, (after[0][0] - typing[-1], after[0][1])

    act2 = Activity("idle", idle_ms=60_000, clock=fake_clock)
    t2 = Tuner(repo, base, opts(max_steps=1), str(tmp_path / "state2"), act2)
    act2.touch()  # the user is typing: the scan waits at its first file
    t_stop = fake_clock.now() + 0.3
    fake_clock.at(t_stop, act2.stop)
    out = t2.run()
    assert out.status == "stopped" and "before any step" in out.message
    assert fake_clock.now() == t_stop  # it waited for the user until the stop, no longer


def test_training_yields_to_a_keystroke(repo, tmp_path):
    """The shipped model (34M) with the default layout and sample length (server-shaped examples, 1,024 tokens):
    each step takes long enough that yielding matters. The user types while a step runs; the step gives the cores
    back. (How soon is a speed goal, measured by bench/tune.py --yields against the tuner's bar of 100 ms.)"""
    from ckls.models import DEFAULT_MODEL

    if not os.path.isfile(DEFAULT_MODEL):
        pytest.skip("no embedded default model in this build")
    act = Activity("idle", idle_ms=50)
    steps = []
    t = Tuner(repo, DEFAULT_MODEL, opts(seq_len=1024, layout="cursor", max_steps=1000, eval_every=1000, threads=2,
                                                rank=8),
              str(tmp_path / "state"), act, on_progress=lambda p: steps.append(p.step) if p.phase == "training" else None)
    th = threading.Thread(target=t.run)
    th.start()
    try:
        deadline = time.monotonic() + 300  # a hang guard, for the whole test
        while not steps and time.monotonic() < deadline:
            time.sleep(0.05)
        assert steps, "no training step finished"
        rng = np.random.default_rng()
        touches = 0
        while act.yields < 3 and time.monotonic() < deadline:
            time.sleep(0.1 + float(rng.uniform(0, 0.3)))  # somewhere inside a step, mostly
            n, s = act.yields, len(steps)
            act.touch()
            touches += 1
            # the running step yields; a touch that fell between two steps shows as the next step finishing
            while act.yields == n and len(steps) == s and time.monotonic() < deadline:
                time.sleep(0.002)
        print("yield delays (ms):", [round(d * 1e3, 1) for d in act.yield_delays], "touches:", touches,
              "steps done:", steps[-1])
        assert act.yields >= 3
    finally:
        act.stop()
        th.join(60)


def test_heldout_evaluation_yields_and_is_unchanged_by_it(repo, tmp_path):
    """Held-out evaluation (at the round's start and between steps) is a forward over 1,024-token windows: it too
    gives the cores back on a keystroke, and evaluates the window again afterwards, so the figures are those of an
    undisturbed round."""
    from ckls.models import DEFAULT_MODEL

    if not os.path.isfile(DEFAULT_MODEL):
        pytest.skip("no embedded default model in this build")
    # a step's sums have one order whatever thread takes what (train_step.c), so the figures must match exactly
    o = opts(seq_len=1024, layout="cursor", max_steps=2, eval_every=1, threads=2, rank=8, heldout_windows=8)
    quiet = Tuner(repo, DEFAULT_MODEL, o, str(tmp_path / "quiet")).run()
    assert quiet.status == "trained" and quiet.heldout_before is not None

    act = Activity("always")
    evaluating = threading.Event()
    phase = [""]

    def progress(p):
        phase[0] = p.phase
        evaluating.set() if p.phase == "evaluating" else evaluating.clear()

    t = Tuner(repo, DEFAULT_MODEL, o, str(tmp_path / "busy"), act, on_progress=progress)
    out = []
    th = threading.Thread(target=lambda: out.append(t.run()))
    th.start()
    rng = np.random.default_rng()
    during, deadline = 0, time.monotonic() + 600  # a hang guard
    try:
        while th.is_alive():
            if not evaluating.wait(0.05):
                continue
            time.sleep(float(rng.uniform(0.005, 0.05)))  # inside the evaluation's first windows
            n = act.yields
            act.touch()
            # it yields, or the evaluation was over: the phase moved on (a cancelled step reports "waiting")
            while act.yields == n and th.is_alive() and phase[0] == "evaluating" and time.monotonic() < deadline:
                time.sleep(0.002)
            during += act.yields > n and phase[0] == "evaluating"
            evaluating.clear()
        th.join()
    finally:
        act.stop()
        th.join(60)
    busy = out[0]
    print("yields during evaluation:", during, "delays (ms):", [round(d * 1e3, 1) for d in act.yield_delays])
    assert busy.status == "trained" and busy.steps == quiet.steps == 2
    assert during >= 2  # the evaluation before the first step and at least one after a step
    assert busy.heldout_before == quiet.heldout_before  # the same forwards, whatever was cancelled on the way
    assert busy.heldout_best == quiet.heldout_best  # and the same steps


def test_excluded_files_are_neither_trained_nor_held_out(models, repo, tmp_path):
    """A before/after measurement's test files (`ckls tune --exclude-eval-split`) stay unseen by the adapter."""
    from ckls.fim.split import held_out_files

    base = models.get("qwen2", "tiny", "f32")
    test_set = held_out_files(repo, 0.3)
    assert test_set
    t = Tuner(repo, base, opts(max_steps=2, exclude=tuple(test_set)), str(tmp_path / "state"))
    s = t.run()
    st = checkpoint.read_json(t.state_path)
    assert s.status == "trained" and 1 <= s.dropped["excluded"] <= len(test_set)  # (vendor/ is dropped anyway)
    assert not set(test_set) & (set(st["trained"]) | set(st["heldout"]))


def test_the_served_adapter_passes_the_completion_gate(models, repo, tmp_path):
    """A round serves its adapter only when held-out completions (middles at cursors of the held-out files, in the
    server's prompt) get likelier with it, the 95% interval of the paired gain above 0; the gate's figures are in
    the round's summary either way. An adapter that changes nothing (B = 0) cannot pass."""
    from ckls.tune.dataset import SampleMaker, scan
    from ckls.tune.loop import serving_gate

    base = models.get("qwen2", "tiny", "f32")
    t = Tuner(repo, base, TuneOptions(rank=4, max_steps=6, eval_every=2, threads=1, heldout_frac=0.2, lr=3e-3),
              str(tmp_path / "state"))
    s = t.run()
    print(s)
    assert s.status == "trained"
    if s.heldout_best is not None and s.heldout_before is not None and s.heldout_best < s.heldout_before:
        g = s.gate
        assert g is not None and g["windows"] > 0 and {"nll_base", "nll_adapter", "gain", "ci95", "passed"} <= set(g)
        assert (s.adapter is not None) == g["passed"] or os.path.isfile(t.adapter_path) == g["passed"]
        if not g["passed"]:
            assert "not served" in s.message
    m = load_model(base, n_ctx=512, n_threads=1)
    try:
        zero = LoraAdapter.for_model(m, rank=4, alpha=8.0, seed=0)  # B starts at 0: the model is unchanged
        path = str(tmp_path / "zero.gguf")
        write_adapter(path, zero.to_weights("qwen2", {}))
        mk = SampleMaker(m.tokenizer, 512)
        texts = [(f.path, f.text) for f in scan(repo).files]
        ws = mk.cursor_windows(texts, 1, 1.0, middle_only=True)[:8]
        g = serving_gate(m, lora, path, ws)
        assert g["windows"] == len(ws) > 0 and abs(g["gain"]) < 1e-9 and not g["passed"]
    finally:
        m.close()


def test_the_gate_never_passes_on_a_handful_of_windows():
    """One window gives a zero-width bootstrap interval: however large its gain, too few windows never pass."""
    from ckls.tune.loop import gate_verdict

    rng = np.random.default_rng()
    b = rng.uniform(1.5, 2.5, 30)
    better = b - rng.uniform(0.2, 0.4, 30)
    assert gate_verdict(b, better, 12)["passed"]
    for n in (1, 2, 11):
        g = gate_verdict(b[:n], better[:n], 12)
        assert g["windows"] == n and g["gain"] > 0 and not g["passed"]
    assert not gate_verdict(b, b + 0.01, 12)["passed"]
    assert not gate_verdict(b[:0], b[:0], 12)["passed"]


def test_gate_windows_draw_more_cursors_on_few_held_out_files(models):
    """A small repository holds out one or two files: the gate draws more cursors on them (distinct windows) up to
    its count, instead of judging on the one or two a single draw gives."""
    from ckls.tune.dataset import SampleMaker
    from ckls.tune.loop import gate_windows

    m = load_model(models.get("qwen2", "tiny", "f32"), n_ctx=512, n_threads=1)
    try:
        mk = SampleMaker(m.tokenizer, 512)
        text = "".join(f"def f{i}(x):\n    y = x * {i}\n    return y + {i}\n\n\n" for i in range(40))
        one = [w for w in mk.cursor_windows([("a.py", text)], 4242, 1.0, middle_only=True) if len(w[0]) > 1]
        got = gate_windows(mk, [("a.py", text)], 24)
        assert len(one) < 24 and len(one) < len(got) <= 24
        assert len({tuple(w[0]) for w in got}) == len(got)
        again = gate_windows(mk, [("a.py", text)], 24)  # the same windows each round: a function of the files
        assert [tuple(w[0]) for w in again] == [tuple(w[0]) for w in got]
    finally:
        m.close()
