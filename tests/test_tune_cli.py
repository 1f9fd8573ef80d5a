"""`ckls tune REPO` as a user runs it: a child process, its progress and summary table; kill -9 mid-run, then a
second run resumes from the checkpoint having lost at most the step in flight."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

CMD = [sys.executable, "-m", "ckls", "tune"]


def has_lora() -> bool:
    try:
        import ckls.runtime.lora  # noqa: F401
    except ImportError:
        return False
    return True


needs_lora = pytest.mark.skipif(not has_lora(), reason="ckls.runtime.lora (the native LoRA trainer) is not in this build")


def flags(model, state, steps):
    return ["--model", model, "--state-dir", state, "--tune-max-steps", str(steps), "--tune-seq-len", "32",
            "--tune-rank", "4", "--tune-threads", "1"]


def test_status_and_bad_arguments(tmp_path, repo):
    out = subprocess.run(CMD + [repo, "--status", "--state-dir", str(tmp_path / "st")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    st = json.loads(out.stdout)
    assert st["rounds"] == 0 and st["adapter"] is None and st["unfinished_step"] is None
    out = subprocess.run(CMD + [str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "not a folder" in out.stderr
    out = subprocess.run(CMD + [repo, "--tune-rank", "0"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "tune_rank" in out.stderr  # a flag out of range: a usage error


@needs_lora
def test_progress_and_summary_table(models, tmp_path, repo):
    out = subprocess.run(CMD + [repo, "--progress", "lines"] + flags(models.get("qwen2", "tiny", "f32"),
                                                                     str(tmp_path / "s"), 6),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if "training, step" in ln]
    assert [int(re.search(r"step (\d+)/6", ln).group(1)) for ln in lines] == list(range(1, 7))
    assert all("loss" in ln and "tok/s" in ln and "ETA" in ln and ln.startswith("[") for ln in lines)
    table = dict(re.split(r"\s{2,}", ln.strip(), maxsplit=1) for ln in out.stdout.splitlines())
    assert table["status"].startswith("trained") and table["steps"] == "6"
    assert "-> " in table["train loss"] and "held out" in table["files"]
    again = subprocess.run(CMD + [repo, "--json", "-q"] + flags(models.get("qwen2", "tiny", "f32"),
                                                                str(tmp_path / "s"), 6),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "up to date"


@needs_lora
def test_kill_9_then_resume(models, tmp_path, repo):
    """SIGKILL at a random moment of a run; the checkpoint holds every step the run reported (it is written
    before the step is reported), at most the step in flight is lost, and the next run resumes there."""
    model = models.get("qwen2", "tiny", "f32")
    state = str(tmp_path / "state")
    total = 400
    proc = subprocess.Popen(CMD + [repo, "--progress", "lines"] + flags(model, state, total),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    reported = 0
    want = int(np.random.default_rng().integers(5, 40))
    try:
        for line in proc.stderr:
            m = re.search(r"training, step (\d+)/", line)
            if m:
                reported = int(m.group(1))
                if reported >= want:
                    break
        time.sleep(float(np.random.default_rng().uniform(0, 0.05)))  # land anywhere in a later step
        proc.send_signal(signal.SIGKILL)
        rest = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    for m in re.finditer(r"training, step (\d+)/", rest):
        reported = int(m.group(1))
    from ckls.tune import checkpoint

    arrays, meta = checkpoint.load(os.path.join(state, "checkpoint.npz"))
    print(f"killed after step {reported} was reported; checkpoint at step {meta['step']}")
    assert reported >= want and reported <= meta["step"] <= reported + 1
    assert meta["trainer"]["adam_step"] == meta["step"]  # optimizer state saved with the same step
    out = subprocess.run(CMD + [repo, "--json", "-q"] + flags(model, state, total), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["status"] == "trained" and s["resumed_at"] == meta["step"] and s["steps"] == total
