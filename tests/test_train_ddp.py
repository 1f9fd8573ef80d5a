"""torchrun (gloo, CPU): 2 processes match 1 at the same global batch, and a checkpoint resumes exactly."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import fresh_seed, note_seed

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
MODEL = ["--dim", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "64", "--seq", "32",
         "--batch", "8", "--micro", "4", "--lr", "3e-3", "--warmup", "2", "--log-every", "1",
         "--eval-tokens", "2048", "--threads", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory, request):
    d = tmp_path_factory.mktemp("data")
    seed = fresh_seed()
    note_seed(request.node, seed, "data seed")  # (module-scoped: reported with any of the module's failures)
    rng = np.random.default_rng(seed)
    vocab = 97
    # A learnable stream: a repeating pattern with noise, so the loss falls within a few steps.
    base = np.tile(np.arange(vocab, dtype=np.uint16), 200)
    noise = rng.integers(0, vocab, base.size).astype(np.uint16)
    train = np.where(rng.random(base.size) < 0.1, noise, base).astype(np.uint16)
    np.save(d / "train.npy", train)
    np.save(d / "heldout.npy", base[:4000])
    (d / "meta.json").write_text(json.dumps({"vocab_size": vocab, "heldout_bytes_per_token": 3.0}))
    return d


def torchrun(nproc, data, out, *extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "ckls.train", "train", "--data", str(data), "--out", str(out), *MODEL, *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_two_ranks_match_one_and_resume(data, tmp_path):
    """1 process, 6 steps straight  ==  2 processes, stopped after 3 steps and resumed from the checkpoint."""
    one = torchrun(1, data, tmp_path / "one", "--max-steps", "6", "--ckpt-every", "0")
    two = tmp_path / "two"
    first = torchrun(2, data, two, "--max-steps", "6", "--ckpt-every", "0", "--stop-after", "3")
    assert [r["step"] for r in first] == [1, 2, 3] and not (two / "metrics.json").exists()
    both = torchrun(2, data, two, "--max-steps", "6", "--ckpt-every", "0")
    assert [r["step"] for r in both] == [1, 2, 3, 4, 5, 6]
    l1 = np.array([r["loss"] for r in one])
    l2 = np.array([r["loss"] for r in both])
    np.testing.assert_allclose(l2, l1, rtol=2e-4, atol=2e-5)
    assert l1[-1] < l1[0]  # it learns
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((two / "metrics.json").read_text())
    assert (m1["world"], m2["world"], m2["steps"]) == (1, 2, 6)
    np.testing.assert_allclose(m2["heldout_loss"], m1["heldout_loss"], rtol=1e-3)
    a = torch.load(two / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "one" / "ckpt.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-5)
