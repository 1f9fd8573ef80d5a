"""The evaluation's summary and its three renderings, on runs built by hand (the end-to-end path through the
agent and the judge is tests/test_skills_eval.py)."""
import json
import math
import xml.etree.ElementTree as ET

import pytest

from ckls.skills.evaluate import EvalError, EvalResult, EvalSettings, Run, skill_sets, summarize
from ckls.skills.report import to_json, to_svg, to_text
from ckls.skills.scaffold import new_skill


def run(cond, trial, task, verdict, tokens=(100, 10, 0, 0), cost=0.01, sp=None, model="m", turns=3):
    i, o, cw, cr = tokens
    return Run(model=model, task=task, lang="c", condition=cond, trial=trial, verdict=verdict, check=None,
               stop="submitted", turns=turns, input_tokens=i, output_tokens=o, cache_creation_input_tokens=cw,
               cache_read_input_tokens=cr, cost_usd=cost, speedup_original=sp, speedup_numpy=sp and sp / 10)


def test_pass_rates_spread_and_lift_per_trial():
    runs = [run("with", 0, "a", "PASS"), run("with", 0, "b", "PASS"), run("with", 0, "c", "FAIL"),
            run("with", 1, "a", "PASS"), run("with", 1, "b", "FAIL"), run("with", 1, "c", "FAIL"),
            run("without", 0, "a", "FAIL"), run("without", 0, "b", "NO_KERNEL"), run("without", 0, "c", "PASS"),
            run("without", 1, "a", "FAIL"), run("without", 1, "b", "FAIL"), run("without", 1, "c", "FAIL")]
    m = summarize(runs)["m"]
    w, wo = m["conditions"]["with"], m["conditions"]["without"]
    assert w["pass_rate"]["per_trial"] == pytest.approx([2 / 3, 1 / 3])
    assert w["pass_rate"]["mean"] == pytest.approx(0.5)
    assert w["pass_rate"]["std"] == pytest.approx(math.sqrt(2) / 6)
    assert wo["pass_rate"]["per_trial"] == pytest.approx([1 / 3, 0.0])
    assert wo["verdicts"] == {"FAIL": 4, "NO_KERNEL": 1, "PASS": 1}
    d = m["lift"]["pass_rate_delta"]
    assert d["per_trial"] == pytest.approx([1 / 3, 1 / 3]) and d["std"] == pytest.approx(0.0)
    assert m["per_task"]["b"] == {"with": {"passes": 1, "runs": 2, "tokens": 110},
                                  "without": {"passes": 0, "runs": 2, "tokens": 110}}


def test_tokens_costs_and_speedups():
    runs = [run("with", 0, "a", "PASS", (1000, 200, 300, 500), 0.5, sp=100.0),
            run("with", 0, "b", "PASS", (3000, 400, 0, 100), 1.5, sp=400.0),
            run("with", 0, "c", "FAIL", (2000, 300, 0, 0), 1.0, sp=None),
            run("without", 0, "a", "PASS", (6000, 600, 0, 0), None, sp=1.0),
            run("without", 0, "b", "FAIL", (4000, 400, 0, 0), 2.0)]
    m = summarize(runs)["m"]
    w, wo = m["conditions"]["with"], m["conditions"]["without"]
    assert w["tokens"] == {"input_tokens": 2000, "output_tokens": 300, "cache_creation_input_tokens": 100,
                           "cache_read_input_tokens": 200, "total": 2600}
    assert w["tokens_per_pass"] == 7800 / 2
    assert w["cost_usd"] == {"total": 3.0, "per_run": 1.0, "per_pass": 1.5}
    assert wo["cost_usd"] == {"total": None, "per_run": None, "per_pass": None}  # one run has no price
    assert w["speedup"]["vs_original"] == pytest.approx(200.0)  # geometric mean of 100 and 400
    assert w["speedup"]["vs_numpy"] == pytest.approx(20.0)
    assert wo["speedup"]["vs_original"] == pytest.approx(1.0)
    assert m["lift"]["token_savings"] == pytest.approx(1 - 2600 / 5500)
    assert m["lift"]["tokens_saved_per_run"] == pytest.approx(2900)
    assert m["lift"]["cost_savings"] is None


def test_renderings_hold_the_numbers_and_escape_names():
    runs = [run("with", t, "a", "PASS", model="<odd & model>") for t in range(2)] + \
           [run("without", t, "a", "FAIL", model="<odd & model>") for t in range(2)]
    s = EvalSettings(skill="x-y", models=["<odd & model>"], trials=2)
    d = EvalResult(s, ["a"], runs).to_dict()
    assert json.loads(to_json(d))["summary"]["<odd & model>"]["lift"]["pass_rate_delta"]["mean"] == 1.0
    text = to_text(d)
    assert "lift: pass rate +100 points" in text and "100% ±0 [100%-100%]" in text
    root = ET.fromstring(to_svg(d))  # well-formed although the model name holds < and &
    assert "<odd & model>" in "".join(root.itertext())
    empty = EvalResult(s, ["a"], []).to_dict()  # an evaluation interrupted before its first run
    assert "skill x-y" in to_text(empty)
    ET.fromstring(to_svg(empty))


def test_skill_sets_for_each_baseline(tmp_path):
    for n in ("alpha", "beta", "gamma"):
        new_skill(tmp_path, n, f"The {n} skill: what it does and when to use it, in a sentence.")
    assert skill_sets("beta", "none", tmp_path) == {"without": [], "with": ["beta"]}
    assert skill_sets("beta", "others", tmp_path) == {"without": ["alpha", "gamma"],
                                                      "with": ["alpha", "gamma", "beta"]}
    with pytest.raises(EvalError):
        skill_sets("beta", "some", tmp_path)


def test_report_command_reprints_and_replots(tmp_path, capsys):
    from ckls.skills.cli import main as skills_main

    runs = [run("with", 0, "a", "PASS"), run("without", 0, "a", "FAIL")]
    d = EvalResult(EvalSettings(skill="x-y", models=["m"], trials=1), ["a"], runs).to_dict()
    (tmp_path / "result.json").write_text(to_json(d))
    assert skills_main(["report", str(tmp_path / "result.json"), "--svg", str(tmp_path / "p.svg")]) == 0
    assert capsys.readouterr().out.strip() == to_text(d)
    assert (tmp_path / "p.svg").read_text() == to_svg(d)
