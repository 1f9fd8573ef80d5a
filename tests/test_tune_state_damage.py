"""A damaged tuning state folder: every corruption of checkpoint.npz or state.json is set aside (renamed
<name>.corrupt-<time>) with a warning that says what was lost and where the round goes on; the round then trains
to its end, and the run after it is clean. Never a silent restart, never a state the next run cannot get past."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tune_fixtures import make_repo

pytest.importorskip("ckls.runtime.lora", reason="ckls.runtime.lora (the native LoRA trainer) is not in this build")

from ckls.tune import checkpoint  # noqa: E402
from ckls.tune.loop import TuneOptions, Tuner  # noqa: E402
from ckls.tune.scheduler import Activity  # noqa: E402

STEPS = 6


def opts(**kw):
    base = dict(rank=4, alpha=8.0, seq_len=32, max_steps=STEPS, eval_every=3, threads=1, lr=1e-3, heldout_frac=0.1,
                heldout_windows=2, layout="pieces")
    base.update(kw)
    return TuneOptions(**base)


@pytest.fixture(scope="module")
def prepared(models, tmp_path_factory):
    """A repository and a state folder holding one finished round (state.json, adapter) and an unfinished second
    round stopped at step 3 (checkpoint.npz)."""
    root = tmp_path_factory.mktemp("damage")
    repo = root / "repo"
    repo.mkdir()
    make_repo(repo)
    model = models.get("qwen2", "tiny", "f32")
    state = str(root / "state")
    assert Tuner(str(repo), model, opts(), state).run().status == "trained"
    trained = checkpoint.read_json(os.path.join(state, "state.json"))["trained"]
    with open(os.path.join(repo, sorted(trained)[0]), "a") as f:
        f.write("\n\ndef more():\n    return [i * i for i in range(10)]\n")
    act = Activity("always")
    s = Tuner(str(repo), model, opts(), state, act,
              on_progress=lambda p: act.stop() if p.phase == "training" and p.step == 3 else None).run()
    assert s.status == "stopped" and checkpoint.load(os.path.join(state, "checkpoint.npz"))[1]["step"] == 3
    return str(repo), model, state


def _edit_checkpoint(path, arrays=None, meta=None):
    a, m = checkpoint.load(path)
    a.update(arrays or {})
    m.update(meta or {})
    checkpoint.save(path, a, m)


def _raw(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)


CK = "checkpoint.npz"
CORRUPTIONS = {
    "truncated": lambda p: _raw(p, open(p, "rb").read()[:300]),
    "garbage": lambda p: _raw(p, os.urandom(2000)),
    "empty": lambda p: _raw(p, b""),
    "flipped byte": lambda p: _raw(p, (lambda b: b[:len(b) // 2] + bytes([b[len(b) // 2] ^ 0x55])
                                                + b[len(b) // 2 + 1:])(open(p, "rb").read())),
    "no meta": lambda p: np.savez(p, **checkpoint.load(p)[0]),
    "meta not an object": lambda p: np.savez(p, **checkpoint.load(p)[0],
                                             __meta__=np.frombuffer(b"[1, 2]", dtype=np.uint8)),
    "wrong-shape params": lambda p: _edit_checkpoint(p, {"params": np.zeros(7, np.float32)}),
    "2-D moments": lambda p: _edit_checkpoint(p, {"adam_m": checkpoint.load(p)[0]["adam_m"].reshape(1, -1)}),
    "NaN moments": lambda p: _edit_checkpoint(p, {"adam_m": np.full_like(checkpoint.load(p)[0]["adam_m"], np.nan)}),
    "negative second moments": lambda p: _edit_checkpoint(p, {"adam_v": -np.ones_like(checkpoint.load(p)[0]["adam_v"])}),
    "params missing": lambda p: np.savez(p, **{k: v for k, v in checkpoint.load(p)[0].items() if k != "params"},
                                         __meta__=np.frombuffer(json.dumps(checkpoint.load(p)[1]).encode(), np.uint8)),
    "negative step": lambda p: _edit_checkpoint(p, meta={"step": -4}),
    "step 10**9": lambda p: _edit_checkpoint(p, meta={"step": 10 ** 9, "trainer": {"adam_step": 10 ** 9}}),
    "step a string": lambda p: _edit_checkpoint(p, meta={"step": "3"}),
    "NaN best": lambda p: _edit_checkpoint(p, meta={"best": float("nan")}),
    "file list of numbers": lambda p: _edit_checkpoint(p, meta={"fresh": [1, 2]}),
    "optimizer step missing": lambda p: _edit_checkpoint(p, meta={"trainer": {}}),
}
STATE_CORRUPTIONS = {
    "state truncated": lambda p: _raw(p, open(p, "rb").read()[:40]),
    "state not UTF-8": lambda p: _raw(p, b"\xff\xfe{}"),
    "state a list": lambda p: _raw(p, b"[1, 2, 3]"),
    "state trained not a map": lambda p: _raw(p, json.dumps(dict(json.load(open(p)), trained=[1])).encode()),
    "state rounds not a list": lambda p: _raw(p, json.dumps(dict(json.load(open(p)), rounds=5)).encode()),
}


def _run_damaged(prepared, tmp_path, name: str, corrupt) -> tuple:
    repo, model, state0 = prepared
    state = str(tmp_path / "state")
    shutil.copytree(state0, state)
    target = os.path.join(state, "state.json" if name in STATE_CORRUPTIONS else CK)
    corrupt(target)
    seen = []
    s = Tuner(repo, model, opts(), state, on_progress=seen.append).run()
    return s, seen, state, os.path.basename(target)


@pytest.mark.parametrize("name", list(CORRUPTIONS) + list(STATE_CORRUPTIONS))
def test_damaged_state_is_set_aside_with_a_word_and_the_round_goes_on(prepared, tmp_path, name):
    corrupt = CORRUPTIONS.get(name) or STATE_CORRUPTIONS[name]
    s, seen, state, fname = _run_damaged(prepared, tmp_path, name, corrupt)
    print(name, "->", s.warnings)
    assert s.status == "trained" and s.steps == STEPS, (name, s)
    # said once, naming the file, what was lost and where the round went on
    assert len(s.warnings) == 1 and fname in s.warnings[0] and "Lost:" in s.warnings[0], s.warnings
    assert len(s.warnings[0]) <= 500
    assert any(p.phase == "warning" for p in seen)
    aside = [f for f in os.listdir(state) if f.startswith(fname + ".corrupt-")]
    assert len(aside) == 1  # kept for a look, out of the way
    if fname == CK:
        assert s.resumed_at == 0 and "step 0" in s.warnings[0]
    assert all(0.0 <= (p.fraction or 0.0) <= 1.0 and p.step <= max(p.total, STEPS) for p in seen)
    st = checkpoint.read_json(os.path.join(state, "state.json"), strict=True)
    assert st["rounds"][-1]["warnings"] == s.warnings and not os.path.exists(os.path.join(state, CK))
    # the next run is clean: nothing damaged is left for it
    again = Tuner(prepared[0], prepared[1], opts(), state).run()
    # (after a lost record the files the resumed round did not cover are new once more)
    assert again.warnings == [] and again.status == ("trained" if fname == "state.json" else "up to date")
    assert Tuner(prepared[0], prepared[1], opts(), state).status()["damaged"] == {}


def test_a_sound_checkpoint_resumes_without_a_word(prepared, tmp_path):
    s, seen, state, _ = _run_damaged(prepared, tmp_path, "none", lambda p: None)
    assert s.status == "trained" and s.resumed_at == 3 and s.warnings == []


def test_cli_status_and_progress_with_a_step_1e9_checkpoint(prepared, tmp_path):
    """The command line: --status names the damage before any run; the run warns on stderr, its progress lines
    stay short (the bar's fill is clamped), and the table lists the warning."""
    repo, model, state0 = prepared
    state = str(tmp_path / "state")
    shutil.copytree(state0, state)
    ck = os.path.join(state, CK)
    _edit_checkpoint(ck, meta={"step": 10 ** 9, "trainer": {"adam_step": 10 ** 9}})
    flags = ["--model", model, "--state-dir", state, "--tune-max-steps", str(STEPS), "--tune-seq-len", "32",
             "--tune-rank", "4", "--tune-alpha", "8", "--tune-threads", "1"]
    cmd = [sys.executable, "-m", "ckls", "tune", repo]
    st = subprocess.run(cmd + ["--status"] + flags, capture_output=True, text=True, timeout=120)
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["unfinished_step"] == 10 ** 9  # a count, only the run can see it is too far
    out = subprocess.run(cmd + ["--progress", "lines"] + flags, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    warn = [ln for ln in out.stderr.splitlines() if ln.startswith("ckls: warning:")]
    assert len(warn) == 1 and "past the 6 steps" in warn[0] and "corrupt-" in warn[0]
    assert max(len(ln) for ln in out.stderr.splitlines()) <= 500
    assert re.search(r"^warning\s+checkpoint\.npz", out.stdout, re.M)
    # a checkpoint that cannot be read at all: --status says so (and changes nothing)
    _raw(ck, b"garbage")
    st = json.loads(subprocess.run(cmd + ["--status"] + flags, capture_output=True, text=True, timeout=120).stdout)
    assert "checkpoint.npz" in st["damaged"] and os.path.exists(ck)
