"""The agent loop through the real anthropic SDK against a local Messages API server (tests/messages_api_server.py,
the only stand-in: it replaces the network). Tools run for real: gcc, the judge's plan and benchmark, the skills.
The verdict at the end comes from a fresh ckls.verify run, never from what the model says."""
import random
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from ckls.kernels.agent import PRICES, AgentConfig, Usage, run_agent
from ckls.verify.run import verify
from kernels_fixtures import AXPY_OK, axpy_task  # noqa: F401  (fixture)
from messages_api_server import MessagesAPIServer, last_tool_results, result_text, say, tool

BAD_SYNTAX = AXPY_OK.replace("out[i] = a", "out[i] = b")
BAD_TAIL = AXPY_OK.replace("i < n;", "i + 1 < n;")


def cfg(srv, **kw):
    return AgentConfig(base_url=srv.url, api_key=srv.api_key, **kw)


def expect_result(pred, then):
    """A scripted turn that first checks what the previous tool call really returned."""
    def step(body, srv):
        res = last_tool_results(body)
        assert res, "no tool_result in the request"
        text = result_text(res[-1])
        assert pred(text, res[-1]), text[:500]
        return then
    return step


def test_full_run_streams_uses_real_tools_and_the_judge_decides(axpy_task):
    script = [
        tool("read_skill", "Reading the SIMD guidance first.\nThen a plain loop.", name="c-simd-kernels"),
        expect_result(lambda t, r: "Tails" in t, tool("compile", source=BAD_SYNTAX)),
        expect_result(lambda t, r: r.get("is_error") and "error" in t and "kernel.c:5" in t,
                      tool("run_public_tests", source=BAD_TAIL)),
        expect_result(lambda t, r: r.get("is_error") and "FAIL" in t and "wrong_result" in t,
                      tool("run_public_tests", source=AXPY_OK)),
        expect_result(lambda t, r: t.startswith("PASS"), tool("benchmark", source=AXPY_OK)),
        expect_result(lambda t, r: "kernel" in t and "original" in t,
                      tool("submit_kernel", "Submitting.", source=AXPY_OK, notes="plain loop, gcc vectorises")),
    ]
    lines = []
    with MessagesAPIServer(script) as srv:
        res = run_agent(axpy_task, "c", cfg(srv), progress=lines.append)
    assert srv.errors == []
    assert res.stop == "submitted" and res.submitted and res.error is None, res.error
    assert res.source == AXPY_OK and res.turns == 6 and res.notes.startswith("plain loop")
    # every request streamed, carried the tools, the system prompt with skill names, a cache breakpoint
    for r in srv.requests:
        b = r["body"]
        assert b["stream"] is True and b["model"] == "claude-sonnet-5-5" and b["max_tokens"] == 8192
        assert {t["name"] for t in b["tools"]} == {"read_skill", "compile", "run_public_tests", "benchmark",
                                                    "submit_kernel"}
        assert "c-simd-kernels" in b["system"][0]["text"] and "void axpy(int64_t n" in b["system"][0]["text"]
        assert sum("cache_control" in c for c in b["messages"][-1]["content"]) == 1
    # usage is the sum of what the server reported; the cost follows the price table
    for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        assert getattr(res.usage, k) == sum(u[k] for u in srv.reported), k
    assert res.usage.cache_read_input_tokens > 0
    assert abs(res.usage.cost_usd("claude-sonnet-5-5") - (
        res.usage.input_tokens * 2 + res.usage.output_tokens * 10 + res.usage.cache_creation_input_tokens * 2.5
        + res.usage.cache_read_input_tokens * 0.2) / 1e6) < 1e-12
    # streamed text and tool progress reached the callback line by line
    assert "turn 1: Reading the SIMD guidance first." in lines and "turn 1: Then a plain loop." in lines
    assert any(m.startswith("turn 3: run_public_tests -> axpy: FAIL") for m in lines)
    seed = random.SystemRandom().getrandbits(32)
    k = Path(tempfile.mkdtemp()) / "axpy.c"
    k.write_text(res.source)
    rep = verify(axpy_task.ref, str(k), axpy_task.spec, budget="quick", seed=seed)
    assert rep.verdict == "PASS", f"seed {seed}\n{rep.to_text()}"


def test_429_and_5xx_are_retried_then_succeed(axpy_task):
    script = [{"status": 429, "error_type": "rate_limit_error", "headers": {"retry-after-ms": "10"}},
              {"status": 500, "error_type": "api_error", "headers": {"retry-after-ms": "10"}},
              {"status": 529, "error_type": "overloaded_error", "headers": {"retry-after-ms": "10"}},
              tool("submit_kernel", source=AXPY_OK)]
    with MessagesAPIServer(script) as srv:
        res = run_agent(axpy_task, "c", cfg(srv))
    assert res.stop == "submitted", res.error
    assert [r["headers"].get("x-stainless-retry-count") for r in srv.requests] == ["0", "1", "2", "3"]


def test_retries_run_out_with_a_clear_error(axpy_task):
    script = [{"status": 429, "error_type": "rate_limit_error", "headers": {"retry-after-ms": "5"}}] * 3
    with MessagesAPIServer(script) as srv:
        res = run_agent(axpy_task, "c", cfg(srv, max_retries=2))
    assert res.stop == "error" and "rate limited (429)" in res.error and res.source is None
    assert len(srv.requests) == 3


def test_timeouts_are_retried_then_reported(axpy_task):
    with MessagesAPIServer([{"silent": True}, tool("submit_kernel", source=AXPY_OK)]) as srv:
        res = run_agent(axpy_task, "c", cfg(srv, timeout_s=0.3, max_retries=1))
    assert res.stop == "submitted", res.error
    with MessagesAPIServer([{"silent": True}, {"silent": True}]) as srv:
        res = run_agent(axpy_task, "c", cfg(srv, timeout_s=0.3, max_retries=1))
    assert res.stop == "error" and "did not answer within 0 s" not in res.error
    assert "did not answer within" in res.error


def test_error_event_mid_stream_is_retried(axpy_task):
    script = [{"stream_error": "overloaded_error"}, tool("submit_kernel", source=AXPY_OK)]
    lines = []
    with MessagesAPIServer(script) as srv:
        res = run_agent(axpy_task, "c", cfg(srv), progress=lines.append)
    assert res.stop == "submitted"
    assert any("stream broke (overloaded_error)" in m for m in lines)


def test_refusal_stops_without_a_kernel(axpy_task):
    with MessagesAPIServer([say("I can't help with that.", stop="refusal")]) as srv:
        res = run_agent(axpy_task, "c", cfg(srv))
    assert res.stop == "refusal" and res.source is None and "refusal" in res.error


def test_max_tokens_stop_keeps_the_last_compiled_candidate(axpy_task):
    script = [tool("compile", source=AXPY_OK), say("Now the AVX2 version:\n```c\nvoid axpy(", stop="max_tokens")]
    with MessagesAPIServer(script) as srv:
        res = run_agent(axpy_task, "c", cfg(srv, max_tokens=64))
    assert srv.requests[0]["body"]["max_tokens"] == 64
    assert res.stop == "max_tokens" and "max_tokens (64)" in res.error
    assert res.source == AXPY_OK and not res.submitted


def test_max_turns_and_a_nudge_when_no_tool_is_called(axpy_task):
    script = [say("Let me think."), tool("compile", source=BAD_SYNTAX), tool("compile", source=AXPY_OK)]
    with MessagesAPIServer(script) as srv:
        res = run_agent(axpy_task, "c", cfg(srv, max_turns=3))
    assert res.stop == "max_turns" and res.turns == 3 and res.source == AXPY_OK
    assert srv.requests[1]["body"]["messages"][-1]["content"][0]["text"].startswith("Continue with the tools")


def test_token_budget_stops_cleanly(axpy_task):
    with MessagesAPIServer([tool("compile", source=AXPY_OK)] * 3) as srv:
        res = run_agent(axpy_task, "c", cfg(srv, budget_tokens=500))
    assert res.stop == "budget" and res.turns == 1 and res.usage.total >= 500 and res.source == AXPY_OK


def test_cancel_stops_between_steps(axpy_task):
    cancel = threading.Event()

    def progress(m):
        if "compile ->" in m:
            cancel.set()
    with MessagesAPIServer([tool("compile", source=AXPY_OK), tool("compile", source=AXPY_OK)]) as srv:
        res = run_agent(axpy_task, "c", cfg(srv), progress=progress, cancel=cancel)
    assert res.stop == "cancelled" and len(srv.requests) == 1


def test_api_key_from_environment_is_sent_and_never_shown(axpy_task, monkeypatch):
    secret = "sk-ant-secret-0123456789"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    lines = []
    with MessagesAPIServer([tool("submit_kernel", source=AXPY_OK)], api_key=secret) as srv:
        res = run_agent(axpy_task, "c", AgentConfig(base_url=srv.url), progress=lines.append)
    assert res.stop == "submitted"
    with MessagesAPIServer([], api_key="another-key") as srv:
        bad = run_agent(axpy_task, "c", AgentConfig(base_url=srv.url, api_key=secret), progress=lines.append)
    assert bad.stop == "error" and "authentication failed (401)" in bad.error
    shown = repr(res) + repr(bad) + " ".join(lines) + repr(AgentConfig(api_key=secret))
    assert secret not in shown
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    none = run_agent(axpy_task, "c", AgentConfig(base_url="http://127.0.0.1:9"))
    assert none.stop == "error" and "ANTHROPIC_API_KEY" in none.error


def test_without_skills_there_is_no_read_skill_tool(axpy_task):
    with MessagesAPIServer([tool("submit_kernel", source=AXPY_OK)]) as srv:
        res = run_agent(axpy_task, "c", cfg(srv, skills=[]))
    body = srv.requests[0]["body"]
    assert res.stop == "submitted"
    assert "read_skill" not in {t["name"] for t in body["tools"]} and "Skills" not in body["system"][0]["text"]


def test_submit_that_does_not_compile_is_sent_back(axpy_task):
    script = [tool("submit_kernel", source=BAD_SYNTAX),
              expect_result(lambda t, r: r.get("is_error") and "does not compile" in t,
                            tool("submit_kernel", source=AXPY_OK))]
    with MessagesAPIServer(script) as srv:
        res = run_agent(axpy_task, "c", cfg(srv))
    assert srv.errors == [] and res.stop == "submitted" and res.source == AXPY_OK


def test_usage_cost_table():
    u = Usage(1_000_000, 1_000_000, 0, 0)
    assert u.cost_usd("claude-sonnet-4-5-20250929") == 18.0
    assert u.cost_usd("claude-sonnet-5-5") == 12.0
    assert u.cost_usd("claude-haiku-4-5") == 6.0
    assert u.cost_usd("some-other-model") is None and "cost unknown" in u.describe("some-other-model")
    assert u.cost_usd("claude-opus-4-20250514") == 90.0 and u.cost_usd("claude-3-5-haiku-latest") == 4.8
    assert u.cost_usd("claude-opus-4-7") is None  # not in the table: no guess from a neighbour
    assert all(len(p) == 4 for p in PRICES.values())


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cuda_run_compiles_with_nvcc_and_the_judge_says_unverified(axpy_task):
    """CUDA: the same loop; compile and the public tests use nvcc; without a GPU the verdict is UNVERIFIED."""
    from ckls.kernels.service import generate
    md = (Path(__file__).resolve().parent.parent / "skills/cuda-kernels/references/launcher.md").read_text()
    cu = md.split("```cuda\n")[1].split("```")[0]
    script = [tool("compile", source=cu.replace('extern "C" ', "")),
              expect_result(lambda t, r: r.get("is_error") and "kernel.cu" in t and "axpy" in t,
                            tool("run_public_tests", source=cu)),
              expect_result(lambda t, r: "UNVERIFIED" in t, tool("submit_kernel", source=cu))]
    with MessagesAPIServer(script) as srv:
        out = generate(axpy_task, "cuda", cfg(srv), budget="quick")
    assert srv.errors == [] and out.agent.stop == "submitted"
    assert "cuda-kernels" in srv.requests[0]["body"]["system"][0]["text"]
    assert "extern \"C\" void axpy(int64_t n" in srv.requests[0]["body"]["system"][0]["text"]
    assert out.kernel_path.endswith(".cu") and out.verdict in ("UNVERIFIED", "PASS")


GARBLED = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"ty\n\n'
NOT_UTF8 = b'event: content_block_delta\ndata: {"type": "content_block_delta", "text": "\xff\xfe"}\n\n'
BEFORE_START = (b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": '
                b'{"type": "text_delta", "text": "x"}}\n\n')


@pytest.mark.parametrize("broken, what", [
    ({"cut_after": 4}, "the stream ended before the message was complete"),
    ({"cut_after": 3, "raw": GARBLED}, "an event whose data is not valid JSON"),
    ({"cut_after": 3, "raw": NOT_UTF8}, "bytes that are not UTF-8"),
    ({"cut_after": 0, "raw": BEFORE_START}, "events were malformed or out of order"),
    ({"cut_after": 4, "short_body": True}, "the connection was lost while the answer was streaming"),
], ids=["cut", "garbled-json", "not-utf8", "out-of-order", "connection-lost"])
def test_a_broken_stream_is_retried_then_told_in_one_sentence(axpy_task, broken, what):
    """A stream cut off, garbled, not UTF-8, out of order or dropped is retried like an error event; when every
    try breaks, the error says what failed, that it was retried, and what to do - no bare exception names."""
    step = dict(tool("compile", "Checking the build.", source=AXPY_OK), **broken)
    lines = []
    with MessagesAPIServer([step, tool("submit_kernel", source=AXPY_OK)]) as srv:
        res = run_agent(axpy_task, "c", cfg(srv, max_retries=2), progress=lines.append)
    assert srv.errors == [] and res.stop == "submitted" and len(srv.requests) == 2, (res.error, lines)
    assert any(m.startswith("turn 1: the stream broke (") and what in m and "retry 1 of 2" in m for m in lines), lines
    with MessagesAPIServer([step] * 3) as srv:
        res = run_agent(axpy_task, "c", cfg(srv, max_retries=2))
    assert res.stop == "error" and len(srv.requests) == 3 and res.source is None
    err = res.error
    assert err.startswith("the API's streamed answer broke off in turn 1: ") and what in err, err
    assert "retried 2 times" in err and "Run it again" in err and "\n" not in err
    assert not any(n in err for n in ("AssertionError", "JSONDecodeError", "UnicodeDecodeError", "Error:", "()"))
    with MessagesAPIServer([step]) as srv:
        res = run_agent(axpy_task, "c", cfg(srv, max_retries=0))
    assert res.stop == "error" and "not retried (max_retries is 0)" in res.error and len(srv.requests) == 1
