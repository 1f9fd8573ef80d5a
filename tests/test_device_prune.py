"""bench/device/prune.sh, the GPU driver of prune + distil against the student alone (issue 24), run whole on the
CPU with tiny shapes and seconds of budget: every stage (teacher, prune, distil from the pruned start, distil from
scratch, student alone, exports, summary, results archive) runs and writes what the lead's run will read."""
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "bench" / "device" / "prune.sh"


def test_driver_is_valid_bash():
    r = subprocess.run(["bash", "-n", str(DRIVER)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_driver_runs_every_stage_on_cpu(tmp_path):
    from ckls.train import tokenizer as tk

    std = Path(sysconfig.get_paths()["stdlib"])
    tok = tk.train([p.read_text(encoding="utf-8") for p in sorted((std / "json").glob("*.py"))], vocab_size=300)
    v = tok.get_vocab_size()
    corpus = tmp_path / "work" / "corpus"
    corpus.mkdir(parents=True)
    tok.save(str(corpus / "tokenizer.json"))
    rng = np.random.default_rng(0)
    np.save(corpus / "train.npy", rng.integers(0, v, 20000).astype(np.uint16))
    np.save(corpus / "heldout.npy", rng.integers(0, v, 3000).astype(np.uint16))
    (corpus / "meta.json").write_text(json.dumps({"vocab_size": v}))
    (corpus / "manifest.json").write_text("{}")
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), "EVAL": "0", "SETUP": "0",
           "SHIPPED": "0", "WINDOWS": "8", "OMP_NUM_THREADS": "1",
           "STUDENT": "--dim 32 --layers 2 --heads 2 --ffn 64", "TEACHER": "--dim 64 --layers 3 --heads 4 --ffn 96",
           "COMMON": "--seq 32 --batch 8 --micro 8 --warmup 2 --log-every 5 --ckpt-every 0 --eval-tokens 2000 "
                     "--threads 1"}
    work = tmp_path / "work"
    r = subprocess.run(["bash", str(DRIVER), "run", str(work), "6", "3"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    log = (work / "prune.log").read_text()
    assert r.returncode == 0 and log.rstrip().splitlines()[-1].startswith("done"), log[-3000:]
    s = json.loads((work / "summary.json").read_text())
    assert s["budget_s"] == 6 and s["teacher_s"] == 3 and s["prune_s"] >= 0
    arms = s["arms"]
    assert set(arms) == {"T", "P", "D", "S"} and all(a["steps"] > 0 for a in arms.values())
    assert arms["P"]["params"] == arms["D"]["params"] == arms["S"]["params"] < arms["T"]["params"]
    assert "initialized from" in (work / "P.log").read_text()
    pruned = json.loads((work / "prune.json").read_text().strip().splitlines()[-1])
    assert pruned["cfg"]["dim"] == 32 and pruned["cfg"]["n_layers"] == 2
    for n in "PDST":
        assert (work / f"{n}.gguf").stat().st_size > 0
    with tarfile.open(work / "results.tgz") as t:
        names = set(t.getnames())
    assert {"summary.json", "prune.log", "P/metrics.json", "S/log.jsonl"} <= names
    dest = tmp_path / "out"
    r = subprocess.run(["bash", str(DRIVER), "collect", str(work), str(dest)], cwd=ROOT, env={**env, "GGUF": "P"},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    parts = sorted(dest.glob("P.gguf.part*"))
    assert b"".join(p.read_bytes() for p in parts) == (work / "P.gguf").read_bytes()
    assert {"results.tgz", "summary.json", "P.gguf.sha256"} <= {p.name for p in dest.iterdir()}
