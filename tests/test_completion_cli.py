"""`ckls complete FILE --line L --col C`: the server's pipeline from the command line."""
from __future__ import annotations

import subprocess
import sys

from server_fixtures import expected_completion, tiny_model

_ = tiny_model
SRC = "import os\n\n\ndef area(width, height):\n    return width * height\n\n\ntotal = area(\n"


def test_complete_prints_the_pipelines_suggestion(tiny_model, tmp_path):
    from ckls.config import Settings

    f = tmp_path / "geo.py"
    f.write_text(SRC)
    out = subprocess.run([sys.executable, "-m", "ckls", "complete", str(f), "--line", "8", "--col", "14",
                          "--model", tiny_model, "--threads", "1", "--latency-ms", "30000", "-q"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    s = Settings().merged({"modelPath": tiny_model, "latencyMs": 30000})[0]
    want = expected_completion(tiny_model, "file://" + str(f), SRC, "python", 7, 13, s)
    assert want and out.stdout == want + "\n"


def test_complete_without_a_model_says_so(tmp_path):
    f = tmp_path / "a.py"
    f.write_text("x = 1\n")
    out = subprocess.run([sys.executable, "-m", "ckls", "complete", str(f), "--line", "1", "--col", "1",
                          "--model", str(tmp_path / "none.gguf")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "model file not found" in out.stderr
