"""`ckls eval completion` end to end with the shipped model on a small repo made here: the table, the JSON, the
scores recomputed from the samples, and the suggestions equal to what `ckls complete` gives at the same cursor."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ckls.models import default_model_path

GEO = '''"""Shapes."""
import math


def area(width, height):
    """Area of a rectangle."""
    return width * height


def circle_area(radius):
    return math.pi * radius ** 2


class Square:
    def __init__(self, side):
        self.side = side

    def area(self):
        return area(self.side, self.side)
'''

UTIL = '''def clamp(x, lo, hi):
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def mean(values):
    total = 0
    for v in values:
        total += v
    return total / len(values)
'''

KERNEL = '''#include <stddef.h>

void scale(float *x, size_t n, float a) {
    for (size_t i = 0; i < n; i++) {
        x[i] *= a;
    }
}
'''

pytestmark = pytest.mark.skipif(default_model_path() is None, reason="no default model in this build")


@pytest.fixture
def proj(tmp_path):
    """A small mixed Python/C project (its own, not the tuning tests' `repo`)."""
    root = tmp_path / "proj"
    (root / "shapes").mkdir(parents=True)
    (root / "shapes" / "geo.py").write_text(GEO)
    (root / "shapes" / "util.py").write_text(UTIL)
    (root / "csrc").mkdir()
    (root / "csrc" / "scale.c").write_text(KERNEL)
    return root


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ckls", "eval", "completion", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})


def test_eval_cli_end_to_end(proj, tmp_path):
    from ckls.eval.metrics import edit_similarity, exact_match

    out_json = tmp_path / "out.json"
    p = run_cli("--repo", str(proj), "--files", "shapes/geo.py", "csrc/scale.c", "--samples", "4", "--blocks", "2",
                "--seed", "5", "--threads", "1", "--max-tokens", "24", "--json", str(out_json))
    assert p.returncode == 0, p.stderr
    assert "[6/6]" in p.stderr                               # the progress line
    assert "EM" in p.stdout and "edit sim" in p.stdout and "line" in p.stdout
    d = json.loads(out_json.read_text())
    assert d["files"] == ["csrc/scale.c", "shapes/geo.py"] and d["n_source_files"] == 3 and d["seed"] == 5
    assert d["settings"]["max_tokens"] == 24 and d["settings"]["threads"] == 1
    recs = d["samples"]
    assert [r["kind"] for r in recs].count("line") == 4 and [r["kind"] for r in recs].count("block") == 2
    for r in recs:
        assert r["n_prompt"] > 0 and r["latency_ms"] > 0 and 0.0 <= r["es"] <= 1.0 and not r["timed_out"]
        if r["kind"] == "line":
            assert "\n" not in r["pred"] and "\n" not in r["target"]
            assert r["em"] == exact_match(r["pred"], r["target"])
            assert r["es"] == pytest.approx(edit_similarity(r["pred"].rstrip(), r["target"]))
        else:
            assert r["em"] == exact_match(r["pred"].split("\n")[0], r["target"].split("\n")[0])
            assert r["es"] == pytest.approx(edit_similarity(r["pred"].rstrip(), r["target"]))
    rows = {(r["task"], r["language"]): r for r in d["summary"]}
    line_all = rows[("line", "all")] if ("line", "all") in rows else next(r for r in d["summary"]
                                                                          if r["task"] == "line")
    assert line_all["samples"] == 4
    assert line_all["exact_match"] == pytest.approx(sum(r["em"] for r in recs if r["kind"] == "line") / 4)


def test_held_out_split_is_the_default_and_bad_input_is_reported(proj, tmp_path):
    from ckls.eval import held_out_files

    out_json = tmp_path / "o.json"
    p = run_cli("--repo", str(proj), "--held-out", "0.5", "--split-seed", "1", "--samples", "2", "--blocks", "0",
                "--threads", "1", "--max-tokens", "16", "--json", str(out_json), "-q")
    assert p.returncode == 0, p.stderr
    d = json.loads(out_json.read_text())
    assert d["files"] == held_out_files(proj, 0.5, 1) and d["held_out"] == 0.5
    assert {r["path"] for r in d["samples"]} <= set(d["files"])
    assert run_cli("--repo", str(tmp_path / "nowhere")).returncode == 2
    p = run_cli("--repo", str(proj), "--files", "shapes/none.py")
    assert p.returncode == 2 and "shapes/none.py" in p.stderr
    p = run_cli("--repo", str(proj), "--model", str(tmp_path / "none.gguf"), "--samples", "1")
    assert p.returncode == 1 and "model file not found" in p.stderr


def test_suggestions_are_the_servers(tmp_path):
    """On a one-file repo (no neighbours' definitions), each sample's suggestion is what `ckls complete` prints
    for the same document and cursor: the harness has no generation path of its own."""
    from ckls.config import Settings
    from ckls.completion.oneshot import complete_file
    from ckls.eval.runner import run_samples
    from ckls.eval.samples import make_samples

    repo = tmp_path / "one"
    repo.mkdir()
    (repo / "util.py").write_text(UTIL)
    settings = Settings().merged({"threads": 1, "max_tokens": 24, "latency_ms": 60000})[0]
    samples = make_samples(str(repo), ["util.py"], 2, 1, seed=11, max_lines=settings.max_lines)
    recs = run_samples(samples, str(repo), settings, ["util.py"])
    for s, r in zip(samples, recs):
        doc = tmp_path / "doc" / "util.py"
        doc.parent.mkdir(exist_ok=True)
        doc.write_text(s.text)
        # the same path (so the same file name in the prompt), a fresh engine
        os.replace(doc, repo / "util.py")
        res = complete_file(str(repo / "util.py"), s.line, s.col, settings)
        (repo / "util.py").write_text(UTIL)
        want = res.text.split("\n", 1)[0] if s.kind == "line" else res.text
        assert r.pred == want and r.raw == res.raw, (s, r)


def test_an_adapter_is_served_on_top_of_the_model(tmp_path):
    """--adapter: a LoRA whose B is zero changes nothing; a large random one changes what the model writes."""
    import numpy as np

    from ckls.config import Settings
    from ckls.eval.runner import run_samples
    from ckls.eval.samples import make_samples
    from ckls.runtime import load_model
    from ckls.runtime.adapter_gguf import LoraWeights, write_adapter

    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "util.py").write_text(UTIL)
    with load_model(default_model_path(), n_ctx=256, n_threads=1) as m:
        n_layer, d = m.hparams["n_layer"], m.hparams["n_embd"]
        arch = m.arch
    rng = np.random.default_rng(0)

    def adapter(path, b_scale):
        w = LoraWeights(arch, 8.0)
        for i in range(n_layer):
            a = rng.standard_normal((4, d)).astype(np.float32)
            b = (rng.standard_normal((d, 4)) * b_scale).astype(np.float32)
            w.pairs[f"blk.{i}.attn_q.weight"] = (a, b)
        write_adapter(path, w)
        return str(path)

    settings = Settings().merged({"threads": 1, "max_tokens": 16, "latency_ms": 60000})[0]
    samples = make_samples(str(repo), ["util.py"], 3, 0, seed=2)
    plain = run_samples(samples, str(repo), settings, ["util.py"])
    zero = run_samples(samples, str(repo), settings, ["util.py"], adapter=adapter(tmp_path / "zero.gguf", 0.0))
    noisy = run_samples(samples, str(repo), settings, ["util.py"], adapter=adapter(tmp_path / "big.gguf", 1.0))
    assert [r.raw for r in zero] == [r.raw for r in plain]
    assert [r.raw for r in noisy] != [r.raw for r in plain]
    out = run_cli("--repo", str(repo), "--samples", "1", "--blocks", "0", "--adapter", str(tmp_path / "no.gguf"))
    assert out.returncode == 2 and "no.gguf" in out.stderr
