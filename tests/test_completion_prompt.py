"""FIM prompts in the model's own format, and their stability while typing (what keeps the KV cache useful)."""
from __future__ import annotations

import time

import pytest

from ckls.config import Settings
from ckls.completion.context import ExtraContext, build_context
from ckls.completion.documents import Document
from ckls.completion.engine import Engine, Job
from ckls.completion.prompt import PromptBuilder
from server_fixtures import tiny_model

_ = tiny_model


@pytest.fixture(scope="module")
def tok(tiny_model):
    from ckls.runtime import load_model

    with load_model(tiny_model, n_ctx=256, n_threads=1) as m:
        yield m.tokenizer


def ctx_for(text: str, line: int, col: int, extra=None, budget=2000, uri="file:///p.py"):
    doc = Document(uri, text, "python")
    before, after, first, ln, c = doc.window(line, col, 20000, 20000)
    return build_context(uri, "python", before, after, ln, c, first, extra, budget)


def test_layouts_use_the_models_fim_ids(tok):
    ctx = ctx_for("def f(x):\n    return x\n\ny = f(2)\n", 1, 12)
    p_spm = PromptBuilder(tok, fim_order="spm").build(ctx)
    p_psm = PromptBuilder(tok, fim_order="psm").build(ctx)
    spm, psm = p_spm.tokens, p_psm.tokens
    pre, suf, mid = tok.fim_pre_id, tok.fim_suf_id, tok.fim_mid_id
    assert spm[0] == suf and spm[-1] == mid and spm.count(pre) == 1
    assert psm[0] == pre and psm[-1] == mid and psm.count(suf) == 1
    # the prefix's last token is held back for healing: prompt prefix + heal bytes = the text before the cursor
    assert p_spm.heal == p_psm.heal and p_spm.heal and "def f(x):\n    return x".endswith(p_spm.heal.decode())
    i = spm.index(pre)
    assert tok.decode(spm[i + 1:-1]) + p_spm.heal.decode() == "def f(x):\n    return x"
    assert tok.decode(spm[1:i]) == "\n\ny = f(2)\n"
    j = psm.index(suf)
    assert tok.decode(psm[1:j]) + p_psm.heal.decode() == "def f(x):\n    return x"
    assert tok.decode(psm[j + 1:-1]) == "\n\ny = f(2)\n"
    # without healing the whole prefix is in the prompt
    plain = PromptBuilder(tok, fim_order="spm", heal=False).build(ctx)
    assert plain.heal == b"" and tok.decode(plain.tokens[plain.tokens.index(pre) + 1:-1]) == "def f(x):\n    return x"


def test_budgets_cut_on_lines(tok):
    text = "".join(f"value_{i} = {i} * 3\n" for i in range(400))
    ctx = ctx_for(text, 200, 0)
    b = PromptBuilder(tok, prefix_tokens=100, suffix_tokens=30, extra_tokens=0)
    p = b.build(ctx)
    assert p.n_prefix <= 100 and p.n_suffix <= 30
    i = p.tokens.index(tok.fim_pre_id)
    prefix = tok.decode(p.tokens[i + 1:-1]) + p.heal.decode()
    assert prefix.startswith("value_") and prefix.endswith("value_199 = 199 * 3\n")


def test_typing_keeps_the_prompt_head(tok):
    """Char-by-char typing with SPM changes only the prompt's tail, and the prefix window keeps its start line
    while it fits: consecutive prompts share all but a few tokens."""
    text = "".join(f"def fn_{i}(a):\n    return a + {i}\n\n" for i in range(120)) + "\n"
    b = PromptBuilder(tok, prefix_tokens=300, suffix_tokens=50, extra_tokens=0)
    typed = "result = fn_3(fn_4(7)) + fn_5(8)"
    line = text.count("\n")
    prev = None
    shared = []
    for k in range(len(typed) + 1):
        doc_text = text + typed[:k]
        p = b.build(ctx_for(doc_text, line, k)).tokens
        if prev is not None:
            n = 0
            while n < min(len(p), len(prev)) and p[n] == prev[n]:
                n += 1
            shared.append(len(prev) - n)  # tokens of the old prompt that must be re-evaluated
        prev = p
    assert max(shared) <= 8, shared
    assert sum(shared) / len(shared) <= 4


def test_extra_context_goes_first_with_file_separators(tok):
    ex = ExtraContext(chunk_lines=4)
    ex.note_chunk("file:///lib/other.py", "lib/other.py", ["def other():\n", "    return 42\n"], 0)
    ctx = ctx_for("x = other()\ny = ", 1, 4, extra=ex)
    p = PromptBuilder(tok).build(ctx)
    assert p.n_extra > 0
    sep = tok.fim_sep_id
    assert p.tokens[0] == sep
    head = tok.decode(p.tokens[1:p.tokens.index(sep, 1)])
    assert head == "lib/other.py\ndef other():\n    return 42\n"
    assert p.tokens.index(tok.fim_suf_id) > p.n_extra


def test_engine_reuses_the_cached_prefix_while_typing(tiny_model):
    s = Settings().merged({"modelPath": tiny_model, "threads": 1, "maxTokens": 4, "latencyMs": 30000,
                           "extraTokens": 0})[0]
    eng = Engine(s)
    try:
        eng.load(s).result()
        text = "".join(f"def fn_{i}(a):\n    return a + {i}\n\n" for i in range(60)) + "\n"
        line = text.count("\n")
        reused = []
        for k, ch in enumerate("total = fn_1(2)"):
            text += ch
            ctx = ctx_for(text, line, k + 1)
            r = eng.submit(Job(ctx, deadline=time.monotonic() + 30, max_tokens=4)).result()
            reused.append((r.n_reused, r.n_prompt))
        # after the first request nearly the whole prompt comes from the cache
        assert all(n >= total - 8 for n, total in reused[1:]), reused
    finally:
        eng.close()


def test_prompt_stays_within_the_models_trained_context(tmp_path):
    """A model trained on 512-token windows gets prompts of at most 512 tokens, generation included, whatever
    n_ctx says: the prefix keeps its budget, the suffix and the other files share the rest."""
    from ckls.runtime.synth import shape_hparams, synth_model
    path = tmp_path / "short.gguf"
    synth_model(path, arch="qwen2", shape=dict(shape_hparams("tiny"), n_ctx_train=512), type="f32", seed=0)
    s = Settings().merged({"modelPath": str(path), "threads": 1, "maxTokens": 16, "nCtx": 2048})[0]
    eng = Engine(s)
    try:
        eng.load(s).result()
        b = eng.builder
        assert b.total_tokens == 512 - 16 - 8 and b.prefix_tokens <= b.total_tokens * 3 // 4
        text = "".join(f"def fn_{i}(a):\n    return a + {i}\n\n" for i in range(400))
        ex = ExtraContext(chunk_lines=64)
        ex.note_chunk("file:///lib/u.py", "lib/u.py", [f"u_{i} = {i}\n" for i in range(64)], 0)
        ctx = ctx_for(text, 600, 0, extra=ex)
        r = eng.submit(Job(ctx, deadline=time.monotonic() + 30, max_tokens=16)).result()
        assert 0 < r.n_prompt <= 512 - 16
        p = b.build(ctx)
        assert len(p.tokens) <= b.total_tokens and p.n_prefix > b.prefix_tokens // 2
    finally:
        eng.close()


def test_superseded_request_still_caches_the_shared_head(tiny_model):
    """A keystroke that supersedes a request stops its suggestion, not the prompt head the next request shares."""
    from ckls.runtime import Cancelled

    s = Settings().merged({"modelPath": tiny_model, "threads": 1, "maxTokens": 64, "latencyMs": 30000,
                           "extraTokens": 0, "multiline": "always", "maxLines": 64})[0]
    eng = Engine(s)
    try:
        eng.load(s).result()
        text = "".join(f"def fn_{i}(a):\n    return a + {i}\n\n" for i in range(150)) + "\nresult = fn"
        line = text.count("\n")
        ctx = ctx_for(text, line, len("result = fn"))
        head = eng.builder.build(ctx)
        assert head.n_stable > 500
        job = Job(ctx, deadline=time.monotonic() + 30, max_tokens=64)
        last, deadline = eng.last, time.monotonic() + 60
        fut = eng.submit(job)
        while eng.last is last:  # the model thread built the job's prompt: it is past its check of the flag
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.001)
        job.cancel.set()
        try:
            fut.result()
        except Cancelled:
            pass
        assert eng.model.cached_tokens[: head.n_stable] == head.tokens[: head.n_stable]
        # another document's request stops everything, head included: `hard` raised before the model thread takes
        # the job, so its head's forward starts and stops at its first poll
        job2 = Job(ctx_for("x = 1\n" * 3000, 1500, 0, uri="file:///other.py"), deadline=time.monotonic() + 30,
                   max_tokens=4)
        job2.hard.set()
        last = eng.last
        with pytest.raises(Cancelled):
            eng.submit(job2).result()
        assert eng.last is not last  # it got as far as building the prompt: the head's forward is what stopped
    finally:
        eng.close()


def test_enclosing_scope_header_stays_in_view(tok):
    body = "".join(f"    v{i} = v{i - 1} + {i}\n" for i in range(1, 200))
    text = "def long_function(v0):\n" + body + "    return "
    line = text.count("\n")
    ctx = ctx_for(text, line, 11)
    assert ctx.scope is not None and ctx.scope.name == "long_function"
    p = PromptBuilder(tok, prefix_tokens=100, suffix_tokens=10, extra_tokens=0).build(ctx)
    head = tok.decode(p.tokens[: p.tokens.index(tok.fim_suf_id)])
    assert "def long_function(v0):" in head
    i = p.tokens.index(tok.fim_pre_id)
    assert "def long_function" not in tok.decode(p.tokens[i + 1:])  # the prefix itself was cut
    # no duplicate when the header is inside the prefix
    p2 = PromptBuilder(tok, prefix_tokens=5000, suffix_tokens=10, extra_tokens=0).build(ctx)
    assert p2.tokens[0] == tok.fim_suf_id
