"""Atomic checkpoints: round trip, unreadable files treated as absent, and a writer killed with SIGKILL at random
moments never leaves a half-written checkpoint behind."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ckls.tune import checkpoint


def test_round_trip_and_bad_files(tmp_path):
    p = tmp_path / "ck.npz"
    assert checkpoint.load(p) is None
    a = {"A": np.arange(12, dtype=np.float32).reshape(3, 4), "m": np.zeros(5)}
    checkpoint.save(p, a, {"step": 3, "best": None, "paths": ["x.py"]})
    arrays, meta = checkpoint.load(p)
    assert meta == {"step": 3, "best": None, "paths": ["x.py"]}
    assert set(arrays) == {"A", "m"} and np.array_equal(arrays["A"], a["A"])
    assert checkpoint.read_meta(p) == meta
    whole = p.read_bytes()
    # damaged files are told apart from absent ones: truncated (as if written without the atomic rename),
    # garbage, a flipped byte in a member's data (the zip's CRC), a meta record that is not an object
    mid = len(whole) // 2
    for bad in (whole[:100], b"garbage", whole[:mid] + bytes([whole[mid] ^ 0xFF]) + whole[mid + 1:]):
        p.write_bytes(bad)
        with pytest.raises(checkpoint.Damaged):
            checkpoint.load(p)
    for meta in ([1, 2], "x"):
        checkpoint.save(p, a, {})
        np.savez(p, A=a["A"], __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        with pytest.raises(checkpoint.Damaged, match="not an object"):
            checkpoint.load(p)
    np.savez(p, A=a["A"])
    with pytest.raises(checkpoint.Damaged, match="no meta"):
        checkpoint.load(p)
    aside = checkpoint.set_aside(p)
    assert not p.exists() and os.path.basename(aside).startswith("ck.npz.corrupt-")
    assert checkpoint.set_aside(aside) != aside and checkpoint.load(p) is None
    j = tmp_path / "s.json"
    checkpoint.write_json(j, {"a": 1})
    assert checkpoint.read_json(j) == {"a": 1}
    j.write_text("{")
    assert checkpoint.read_json(j, "default") == "default"
    with pytest.raises(checkpoint.Damaged, match="JSON"):
        checkpoint.read_json(j, "default", strict=True)
    j.write_bytes(b"\xff\xfe")
    with pytest.raises(checkpoint.Damaged):
        checkpoint.read_json(j, strict=True)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".ckls-")]


WRITER = r"""
import sys, numpy as np
from ckls.tune import checkpoint
path = sys.argv[1]
step = 0
while True:
    step += 1
    x = np.full(300_000, step, dtype=np.float32)  # 1.2 MB: a write takes long enough to be interrupted
    checkpoint.save(path, {"x": x}, {"step": step})
    print(step, flush=True)
"""


def test_kill_9_never_leaves_a_torn_checkpoint(tmp_path):
    path = str(tmp_path / "ck.npz")
    rng = np.random.default_rng()
    last_seen = 0
    for trial in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE, text=True)
        first = proc.stdout.readline()  # at least one checkpoint of this run is complete
        assert first.strip()
        time.sleep(float(rng.uniform(0.0, 0.2)))
        proc.send_signal(signal.SIGKILL)
        out = first + proc.stdout.read()
        proc.wait()
        done = [int(s) for s in out.split()]
        got = checkpoint.load(path)
        assert got is not None, f"trial {trial}: no readable checkpoint after kill -9"
        arrays, meta = got
        # the file is whole and self-consistent: the step recorded is the step the array was written with
        assert np.all(arrays["x"] == meta["step"])
        # nothing reported as saved was lost, and at most the save in flight when killed is missing or present
        assert done[-1] <= meta["step"] <= done[-1] + 1
        last_seen = meta["step"]
    assert last_seen >= 1
