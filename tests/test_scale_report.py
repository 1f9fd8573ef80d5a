"""bench/scale_report.py on synthetic run folders: throughput per GPU count and the efficiency of a wide run
(scale.sh wide) against the 1-GPU run."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import scale_report  # noqa: E402


def _run(d: Path, world: int, tok_s: float, steps: int = 60, heldout: float = 2.5):
    d.mkdir(parents=True)
    recs = [{"step": s, "run_step": s, "world": world, "loss": 5.0 - s / 100, "tok_s": tok_s} for s in range(1, steps)]
    (d / "log.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    (d / "metrics.json").write_text(json.dumps({"heldout_loss": heldout}))


def test_wide_runs_report_their_efficiency(tmp_path, capsys):
    _run(tmp_path / "A", 1, 1000.0)
    _run(tmp_path / "C", 2, 1900.0)
    _run(tmp_path / "W8", 8, 6800.0, heldout=2.4)
    r = scale_report.report(tmp_path)
    assert r["efficiency"] == 0.95
    assert r["wide"][8]["tok_s"] == 6800.0 and r["wide"][8]["efficiency"] == 0.85
    assert r["wide"][8]["heldout_loss"] == 2.4
    assert scale_report.main([str(tmp_path)]) == 0
    assert "8 GPUs 6,800 tok/s; efficiency against 1 GPU 85.0%" in capsys.readouterr().out
