"""The pieces behind cold prompts, without a server: the cache's full/reduced precedence, the speed meter's
reduced-prompt budget, and the engine's background prefill — interrupted by requests, replaced by newer work —
leaving answers exactly those of a fresh engine."""
from __future__ import annotations

import math
import threading
import time

import pytest

from ckls.completion.cache import SuggestionCache
from ckls.config import Settings
from ckls.completion.context import build_context
from ckls.completion.engine import Engine, Job
from ckls.completion.prefill import (CHUNK_MAX, CHUNK_MIN, LINE_STEPS, QUICK_MAX, QUICK_MIN, QUICK_SHARE, Meter,
                                     attention_reach, chunk_tokens)

from server_fixtures import tiny_model  # noqa: F401  (fixture)


def test_cache_full_replaces_reduced_never_the_reverse():
    c = SuggestionCache()
    c.put("u", "x = ", "", "1  # reduced", full=False)
    assert c.lookup("u", "x = ", "") == ("1  # reduced", False)
    c.put("u", "x = ", "", "compute()", full=True)
    assert c.lookup("u", "x = ", "") == ("compute()", True)
    c.put("u", "x = ", "", "2", full=False)
    assert c.lookup("u", "x = ", "") == ("compute()", True)
    assert c.lookup("u", "x = comp", "") == ("ute()", True)  # typed ahead keeps the flag
    assert c.get("u", "x = co", "") == "mpute()"


def test_meter_budget_is_a_coarse_ladder_within_bounds():
    m = Meter(tok_s=1000.0, step_ms=5.0)
    n = m.quick_tokens(400, 10_000)
    assert QUICK_MIN <= n <= QUICK_MAX
    assert abs(2 * math.log2(n) - round(2 * math.log2(n))) < 0.05 or n in (QUICK_MIN, QUICK_MAX)
    room = 1000 * (400 - LINE_STEPS * 5.0) * QUICK_SHARE / 1e3  # tokens the cap leaves time for
    assert room / 1.5 <= n <= room
    assert Meter(tok_s=1.0).quick_tokens(400, 10_000) == QUICK_MIN
    assert Meter(tok_s=1e6).quick_tokens(400, 10_000) == QUICK_MAX
    assert Meter(tok_s=1e6).quick_tokens(400, 100) == 100
    # small wobbles of the measured speed leave the budget (and so the reduced prompt's window) where it is
    assert len({Meter(tok_s=v).quick_tokens(400, 10_000) for v in (1000, 1020, 1050)}) == 1
    assert m.fits(100, 1000) and not m.fits(2000, 1000)


def test_meter_counts_attention_over_the_cache():
    """A token deep in the context reads every cached position: the estimate grows with the position, and a
    chunk measured deep in the context tells the speed at its start."""
    m = Meter(tok_s=1000.0, step_ms=5.0, reach=1000.0)
    assert m.prompt_ms(100, 900) == pytest.approx(m.prompt_ms(100, 0) * 195 / 105)
    assert m.fits(200, 400, pos0=0) and not m.fits(200, 400, pos0=1000)
    for _ in range(40):  # 100 tokens at 900-1000 take 195 position-0 tokens' time at 2000 tok/s
        m.prompt(100, 195 / 2000, pos0=900)
    assert m.tok_s == pytest.approx(2000.0, rel=1e-3)
    assert m.tok_s_at(1000) == pytest.approx(1000.0, rel=1e-3)
    # the shipped model's shape: attention over ~2,000 cached positions costs as much as the weights
    assert 1000 < attention_reach({"n_embd": 512, "n_layer": 8, "n_head": 8, "n_head_kv": 8, "n_ff": 1408}) < 4000


def test_background_chunks_end_before_the_next_keystroke():
    # typing every 110 ms at 1000 tok/s: 30 ms after a request, a chunk of what the remaining ~80 ms hold
    n = chunk_tokens(1000.0, 0.03, 0.11)
    assert CHUNK_MIN < n <= 80
    assert chunk_tokens(1000.0, 0.03, 0.11) > chunk_tokens(1000.0, 0.09, 0.11)
    assert chunk_tokens(1000.0, 0.2, 0.11) == CHUNK_MIN   # overdue: keep chunks small until the pause is clear
    assert chunk_tokens(1000.0, 0.3, 0.11) == CHUNK_MAX   # a pause
    assert chunk_tokens(1e6, 0.0, 0.11) == CHUNK_MAX


def _ctx(text: str, line: int, col: int, uri: str = "file:///w/a.py"):
    from ckls.completion.documents import Document

    doc = Document(uri, text, "python")
    before, after, first, ln, c = doc.window(line, col, 768 * 6, 256 * 6)
    return build_context(uri, "python", before, after, ln, c, first, None, 0)


CODE = "".join(f"def f{i}(a, b):\n    return a * {i} + b\n\n" for i in range(120))


def _answer(model: str, ctx, **kw) -> str:
    s = Settings(model_path=model, threads=1, max_tokens=8, extra_tokens=0, **kw)
    eng = Engine(s)
    try:
        eng.load(s).result()
        return eng.submit(Job(ctx, deadline=time.monotonic() + 60, max_tokens=8)).result().text
    finally:
        eng.close()


def _wait(eng: Engine, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while eng.prefill_pending:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("background prefill never finished")
        time.sleep(0.01)


def test_requests_interrupt_background_prefill_and_answers_stay_exact(tiny_model):  # noqa: F811
    s = Settings(model_path=tiny_model, threads=1, max_tokens=8, extra_tokens=0)
    a, b = _ctx(CODE, 200, 4), _ctx(CODE, 40, 11)
    want_a, want_b = _answer(tiny_model, a), _answer(tiny_model, b)
    eng = Engine(s)
    got = []
    try:
        eng.load(s).result()
        eng.prefill(a)
        time.sleep(0.005)
        # a request for another place while the prefill runs: it goes first, exact, and the prefill (the user
        # has moved on) is dropped
        assert eng.submit(Job(b, deadline=time.monotonic() + 60, max_tokens=8)).result().text == want_b
        assert not eng.prefill_pending
        # a quick request interrupts the background too; its own full prompt is then finished behind it
        eng.prefill(b)
        time.sleep(0.005)
        r = eng.submit(Job(a, deadline=time.monotonic() - 1, max_tokens=8, quick=True,
                           on_full=lambda c, res: got.append(res))).result()
        assert r.context == "reduced"
        _wait(eng)
        assert [x.text for x in got] == [want_a]
        assert eng.model.cached_tokens[: len(eng.builder.build(a).tokens)] == eng.builder.build(a).tokens
        r = eng.submit(Job(a, deadline=time.monotonic() + 60, max_tokens=8)).result()
        assert r.text == want_a and r.context == "full"
        assert r.n_reused >= r.n_prompt - 1
    finally:
        eng.close()


def test_quick_job_answers_reduced_then_hands_over_the_full_answer(tiny_model):  # noqa: F811
    s = Settings(model_path=tiny_model, threads=1, max_tokens=8, extra_tokens=0)
    ctx = _ctx(CODE, 150, 4)
    want = _answer(tiny_model, ctx)
    eng = Engine(s)
    got = []
    try:
        eng.load(s).result()
        # a deadline already past: no full prompt fits, so a quick job goes the reduced way
        r = eng.submit(Job(ctx, deadline=time.monotonic() - 1, max_tokens=8, quick=True,
                           on_full=lambda c, res: got.append((c, res)))).result()
        assert r.context == "reduced"
        assert eng.last["n_reduced"] < eng.last["n_prompt"]
        _wait(eng)
        assert len(got) == 1 and got[0][0] is ctx
        assert got[0][1].text == want and got[0][1].context == "full"
        # not quick (the eval harness, `ckls complete`): always the full prompt
        r = eng.submit(Job(ctx, deadline=time.monotonic() - 1, max_tokens=8)).result()
        assert r.context == "full"
    finally:
        eng.close()


@pytest.mark.parametrize("head_only", [True, False])
def test_idle_prefill_fills_the_cache(tiny_model, head_only):  # noqa: F811
    from ckls.completion.context import ExtraContext
    from ckls.completion.documents import Document

    s = Settings(model_path=tiny_model, threads=1, max_tokens=8, extra_tokens=256)
    extra = ExtraContext()
    other = "import numpy as np\n\n\ndef scale(x, k):\n    return np.asarray(x) * k\n"
    extra.note_chunk("file:///w/other.py", "/w/other.py", other.splitlines(keepends=True), 0)
    doc = Document("file:///w/a.py", CODE, "python")
    before, after, first, ln, c = doc.window(100, 4, 768 * 6, 256 * 6)
    ctx = build_context(doc.uri, "python", before, after, ln, c, first, extra, 256 * 3)
    assert ctx.extra
    eng = Engine(s)
    try:
        eng.load(s).result()
        eng.prefill(ctx, head_only=head_only)
        _wait(eng)
        p = eng.builder.build(ctx)
        assert p.n_extra > 0
        want = p.tokens[: p.n_extra] if head_only else p.tokens
        assert eng.model.cached_tokens == want
        assert eng.counts["prefills_done"] == 1
    finally:
        eng.close()


def test_a_request_cancelled_while_queued_does_not_stall_the_background(tiny_model):  # noqa: F811
    s = Settings(model_path=tiny_model, threads=1, max_tokens=8, extra_tokens=0)
    ctx = _ctx(CODE, 120, 4)
    eng = Engine(s)
    try:
        eng.load(s).result()
        release = threading.Event()
        blocker = eng._submit(release.wait, 120)  # the model thread is busy...
        queued = eng.submit(Job(ctx, deadline=time.monotonic() + 60, max_tokens=8))
        eng.prefill(ctx)
        assert queued.cancel()  # ...so this request is still queued when its client gives up
        release.set()
        blocker.result()
        _wait(eng)  # the background still gets the model
        assert eng.model.cached_tokens == eng.builder.build(ctx).tokens
    finally:
        eng.close()
