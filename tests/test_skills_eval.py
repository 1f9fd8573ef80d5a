"""`ckls skills eval` end to end against the local Messages-API server, through the real SDK, the real agent
loop, real compilers and the real judge.

The scripted model, offered the skill, reads it and submits a correct kernel (except once: task silu, trial 1);
without the skill it submits a kernel with a bug (float32 accumulation for l2norm, a dropped tail for silu)
while claiming that all tests pass. The evaluation must report the verdicts of ckls verify, not those claims,
and token, turn and cost figures equal to what the server reported, aggregated per condition and trial.
"""
import json
import math
import re
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ckls.kernels.agent import PRICES
from ckls.skills.cli import main as skills_main
from ckls.skills.evaluate import EvalSettings, run_eval
from ckls.skills.scaffold import new_skill
from ckls.skills.tasks import load_tasks
from messages_api_server import MessagesAPIServer, say, tool

KEY = "sk-ant-test-key"
MODEL = "claude-sonnet-5-5"
SKILL = "accuracy-first"
TASKS_DIR = Path(__file__).resolve().parents[1] / "bench" / "kernel_tasks"
GOOD = {t: (TASKS_DIR / t / "reference.c").read_text() for t in ("l2norm", "silu")}
BAD = {
    "l2norm": "#include <math.h>\n#include <stdint.h>\n"
              "void l2norm(int64_t n, const float *x, float *out) {\n"
              "    float s = 0.0f;  /* float accumulator: overflows at 1e18, underflows at 1e-18 */\n"
              "    for (int64_t i = 0; i < n; i++) s += x[i] * x[i];\n"
              "    out[0] = sqrtf(s);\n}\n",
    "silu": "#include <math.h>\n#include <stdint.h>\n"
            "void silu(int64_t n, const float *x, float *out) {\n"
            "    for (int64_t i = 0; i + 8 <= n; i += 8)  /* blocks of 8; the tail is forgotten */\n"
            "        for (int j = 0; j < 8; j++) out[i + j] = x[i + j] / (1.0f + expf(-x[i + j]));\n}\n",
}
CLAIM = "All public tests pass and the kernel is verified correct and fast."


class ScriptedModel:
    """Answers each request from what the request holds: the task (from the prompt), whether the skill is
    offered (system prompt) and how many turns came before. Records (task, condition) per request."""

    def __init__(self):
        self.log: list[tuple[str, str]] = []
        self.with_runs: dict[str, int] = {}

    def __call__(self, body, server):
        system = " ".join(b["text"] for b in body["system"])
        first = body["messages"][0]["content"]
        first = first if isinstance(first, str) else " ".join(b.get("text", "") for b in first)
        task = re.search(r"::(\w+)\)", first).group(1)
        turn = sum(m["role"] == "assistant" for m in body["messages"])
        cond = "with" if f"- {SKILL}:" in system else "without"
        self.log.append((task, cond))
        if cond == "with":
            if turn == 0:
                self.with_runs[task] = self.with_runs.get(task, 0) + 1
                return tool("read_skill", "Reading the skill first.", name=SKILL)
            trial = self.with_runs[task] - 1
            src = BAD[task] if (task, trial) == ("silu", 1) else GOOD[task]
            return tool("submit_kernel", CLAIM, source=src, notes="double accumulation")
        if turn == 0:
            return tool("compile", "Compiling.", source=BAD[task])
        return tool("submit_kernel", CLAIM, source=BAD[task], notes="fast")


@pytest.fixture
def skills_dir(tmp_path):
    d = tmp_path / "skills"
    md = new_skill(d, SKILL, "Keeps float32 kernels accurate: double accumulators, overflow-safe sums, tails; "
                             "use for reductions and elementwise ops.")
    md.write_text(md.read_text() + "\nAccumulate in double. Handle the tail.\n")
    return d


def expected(server, model: ScriptedModel):
    """Per condition: the server's usage summed per run, the run count, turns."""
    assert len(model.log) == len(server.reported) == len(server.requests)
    out = {c: {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
               "cache_read_input_tokens": 0, "requests": 0} for c in ("with", "without")}
    for (_task, cond), u in zip(model.log, server.reported):
        for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
            out[cond][k] += u[k]
        out[cond]["requests"] += 1
    return out


def test_eval_reports_the_judges_verdicts_and_the_servers_tokens(tmp_path, skills_dir, monkeypatch, capsys):
    model = ScriptedModel()
    out_dir = tmp_path / "out"
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with MessagesAPIServer([model] * 16, api_key=KEY) as server:
        rc = skills_main(["eval", "--skill", SKILL, "--model", MODEL, "--task", "l2norm", "--task", "silu",
                          "--trials", "2", "--budget", "ci", "--skills-dir", str(skills_dir), "--base-url",
                          server.url, "--max-turns", "4", "--out", str(out_dir), "-q"])
    assert rc == 0
    assert server.errors == [] and server.script == []
    table = capsys.readouterr().out
    print(table)
    res = json.loads((out_dir / "result.json").read_text())
    runs = res["runs"]

    # 2 tasks x 2 trials x with/without, interleaved, each judged by ckls verify
    assert [(r["trial"], r["task"], r["condition"]) for r in runs] == [
        (t, task, c) for t in (0, 1) for task in ("l2norm", "silu") for c in ("without", "with")]
    for r in runs:
        assert r["stop"] == "submitted" and r["turns"] == 2 and r["seed"] is not None
        good = r["condition"] == "with" and (r["task"], r["trial"]) != ("silu", 1)
        assert r["verdict"] == ("PASS" if good else "FAIL"), r
        if not good:
            assert r["check"] == "wrong_result"
        assert Path(r["kernel_path"]).read_text() == (GOOD if good else BAD)[r["task"]]
        assert Path(r["kernel_path"]).with_suffix(".verify.txt").read_text().startswith(
            f"{'l2norm' if r['task'] == 'l2norm' else 'silu'}: {r['verdict']}")
    # the transcripts carry the model's claim; the verdicts above ignore it
    tr = json.loads(Path(runs[0]["kernel_path"]).with_suffix(".transcript.json").read_text())
    assert CLAIM in json.dumps(tr)

    # accounting: every token the server reported, attributed to the right condition
    exp = expected(server, model)
    m = res["summary"][MODEL]
    price = PRICES[MODEL]
    for c in ("with", "without"):
        st = m["conditions"][c]
        e = exp[c]
        assert st["runs"] == 4 and e["requests"] == 8
        for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
            assert st["tokens"][k] == pytest.approx(e[k] / 4), (c, k)
            assert sum(r[k] for r in runs if r["condition"] == c) == e[k]
        total = sum(e[k] for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                   "cache_read_input_tokens"))
        assert st["tokens"]["total"] == pytest.approx(total / 4)
        cost = (e["input_tokens"] * price[0] + e["output_tokens"] * price[1] +
                e["cache_creation_input_tokens"] * price[2] + e["cache_read_input_tokens"] * price[3]) / 1e6
        assert st["cost_usd"]["total"] == pytest.approx(cost)
        assert st["turns"] == 2
    # pass rates per trial: with 2/2 then 1/2, without 0/2 twice
    w, wo = m["conditions"]["with"]["pass_rate"], m["conditions"]["without"]["pass_rate"]
    assert w["per_trial"] == [1.0, 0.5] and wo["per_trial"] == [0.0, 0.0]
    assert w["mean"] == 0.75 and w["std"] == pytest.approx(statistics.stdev([1.0, 0.5])) and wo["mean"] == 0.0
    assert m["conditions"]["with"]["passes"] == 3 and m["conditions"]["without"]["passes"] == 0
    lift = m["lift"]
    assert lift["pass_rate_delta"]["mean"] == 0.75 and lift["pass_rate_delta"]["per_trial"] == [1.0, 0.5]
    tw, two = m["conditions"]["with"]["tokens"]["total"], m["conditions"]["without"]["tokens"]["total"]
    assert lift["token_savings"] == pytest.approx(1 - tw / two)
    assert lift["tokens_saved_per_run"] == pytest.approx(two - tw)
    assert m["conditions"]["with"]["tokens_per_pass"] == pytest.approx(tw * 4 / 3)
    assert m["conditions"]["without"]["tokens_per_pass"] is None
    assert m["per_task"]["silu"]["with"]["passes"] == 1 and m["per_task"]["l2norm"]["with"]["passes"] == 2

    # the table and the plot say the same
    assert re.search(r"with\s+75% ±35 \[50%-100%\]\s+3/4", table), table
    assert re.search(r"without\s+0% ±0 \[0%-0%\]\s+0/4", table), table
    assert "lift: pass rate +75 points (±35 over trials, +50..+100)" in table
    svg = (out_dir / "lift.svg").read_text()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "lift +75 points" in svg and f"{MODEL}" in svg


def test_runs_without_a_kernel_count_as_failures_and_still_cost(tmp_path, skills_dir):
    """A refusal ends a run with no kernel: verdict NO_KERNEL, no judge call, its tokens counted."""
    task = load_tasks(TASKS_DIR, ["l2norm"])[0]
    script = [say("I can't help with that.", stop="refusal"), say("I can't help with that.", stop="refusal")]
    with MessagesAPIServer(script, api_key=KEY) as server:
        s = EvalSettings(skill=SKILL, models=[MODEL], trials=1, judge_budget="quick", base_url=server.url,
                         skills_dir=str(skills_dir), out_dir=str(tmp_path / "o"))
        res = run_eval(s, [task], api_key=KEY)
    assert [(r.condition, r.verdict, r.stop, r.verify_s) for r in res.runs] == [
        ("without", "NO_KERNEL", "refusal", 0.0), ("with", "NO_KERNEL", "refusal", 0.0)]
    m = res.summary()[MODEL]
    for r, u in zip(res.runs, server.reported):
        assert r.input_tokens == u["input_tokens"] and r.output_tokens == u["output_tokens"]
    assert m["conditions"]["with"]["pass_rate"]["mean"] == 0.0
    assert m["conditions"]["with"]["verdicts"] == {"NO_KERNEL": 1}
    assert m["lift"]["pass_rate_delta"]["mean"] == 0.0
    assert math.isclose(m["conditions"]["without"]["cost_usd"]["total"],
                        res.runs[0].cost_usd) and res.runs[0].cost_usd > 0


def test_eval_refuses_an_unknown_skill_and_a_missing_key(tmp_path, skills_dir, monkeypatch, capsys):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert skills_main(["eval", "--skill", SKILL, "--skills-dir", str(skills_dir), "--task", "silu"]) == 2
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert skills_main(["eval", "--skill", "no-such-skill", "--skills-dir", str(skills_dir), "--task", "silu",
                        "--out", str(tmp_path / "o")]) == 2
    assert "no skill 'no-such-skill'" in capsys.readouterr().err
    assert skills_main(["eval", "--skill", SKILL, "--task", "nope", "--skills-dir", str(skills_dir)]) == 2
    assert "no such task" in capsys.readouterr().err


@pytest.mark.slow
def test_full_budget_reports_the_speedup_of_passing_kernels(tmp_path, skills_dir):
    """With the judge's full budget each passing kernel is benchmarked; the summary's speedup is the geometric
    mean of the judge's ratios over passing runs."""
    task = load_tasks(TASKS_DIR, ["l2norm"])[0]
    script = [tool("submit_kernel", source=GOOD["l2norm"]), tool("read_skill", name=SKILL),
              tool("submit_kernel", source=GOOD["l2norm"])]
    with MessagesAPIServer(script, api_key=KEY) as server:
        s = EvalSettings(skill=SKILL, models=[MODEL], trials=1, judge_budget="full", base_url=server.url,
                         skills_dir=str(skills_dir), out_dir=str(tmp_path / "o"))
        res = run_eval(s, [task], api_key=KEY)
    assert server.script == [] and [r.verdict for r in res.runs] == ["PASS", "PASS"]
    for r in res.runs:
        assert r.speedup_original > 1.0 and r.speedup_numpy > 0
    m = res.summary()[MODEL]
    for c, r in zip(("without", "with"), res.runs):
        assert m["conditions"][c]["speedup"]["vs_original"] == pytest.approx(r.speedup_original)
        assert m["conditions"][c]["speedup"]["measured"] == 1
