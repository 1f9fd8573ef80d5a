"""One round per state folder across processes: while another process tunes with the folder, a round (and `ckls tune`
in a terminal) is refused with that process's pid; a kill -9 of the holder leaves no stale lock."""
import os
import signal
import subprocess
import sys

import pytest

from ckls.tune import statelock

HOLD = ("import sys, time\n"
        "from ckls.tune.statelock import StateLock\n"
        "StateLock(sys.argv[1]).acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n")


def test_second_lock_in_this_process_is_refused(tmp_path):
    a = statelock.StateLock(str(tmp_path)).acquire()
    with pytest.raises(statelock.Busy, match=f"pid {os.getpid()}"):
        statelock.StateLock(str(tmp_path)).acquire()
    a.release()
    with statelock.StateLock(str(tmp_path)):
        assert statelock.holder(str(tmp_path)) == str(os.getpid())
    assert statelock.holder(str(tmp_path)) is None
    assert statelock.holder(str(tmp_path / "never")) is None


def test_another_process_holds_the_folder_until_killed(models, tmp_path, repo):
    pytest.importorskip("ckls.runtime.lora", reason="ckls.runtime.lora (the native LoRA trainer) is not in this build")
    from ckls.tune.loop import TuneOptions, Tuner, TuneUnavailable

    root = repo
    state = tmp_path / "state"
    state.mkdir()
    model = models.get("qwen2", "tiny", "f32")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(state)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert statelock.holder(str(state)) == str(holder.pid)
        opts = TuneOptions(rank=4, alpha=8.0, seq_len=32, max_steps=2, threads=1, layout="pieces", heldout_windows=2)
        with pytest.raises(TuneUnavailable, match=f"pid {holder.pid}"):
            Tuner(str(root), model, opts, str(state)).run()
        assert not os.path.exists(state / "state.json")  # refused before it wrote anything
        cli = subprocess.run([sys.executable, "-m", "ckls", "tune", str(root), "--model", model, "--state-dir",
                              str(state), "--tune-max-steps", "2", "--tune-seq-len", "32", "--tune-rank", "4",
                              "--quiet"], capture_output=True, text=True, timeout=120)
        assert cli.returncode == 1 and f"another ckls process (pid {holder.pid})" in cli.stderr, cli.stderr
        st = Tuner(str(root), model, opts, str(state)).status()
        assert st["tuning_pid"] == str(holder.pid)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert statelock.holder(str(state)) is None  # the kernel dropped it with the process
    s = Tuner(str(root), model, opts, str(state)).run()
    assert s.status == "trained" and s.steps == 2
