"""Speculative decoding from the context (ckls/runtime/draft.py, Model.generate(draft=...), settings
speculative_tokens): the drafter's matches, the property the identity rests on (a batched pass gives each position
the logits a one-token step gives, bit for bit), and the same output with and without speculation — from
Model.generate with constraints, stop ids, the repository memory and sampling, and from the engine with its real
stop rules (token healing, the one-line end guard, post-processing) on the shipped model and a synthetic one."""
from __future__ import annotations

import os

import numpy as np
import pytest

import ckls
from ckls.completion.engine import Engine, line_breaks, reading_order
from ckls.completion.oneshot import complete_file
from ckls.config import Settings
from ckls.models import default_model_path
from ckls.runtime import load_model
from ckls.runtime.draft import PromptLookup
from ckls.runtime.lora import LoraAdapter
from ckls.runtime.ngram_memory import NgramMemory

SOURCES = [os.path.join(os.path.dirname(ckls.__file__), p) for p in
           ("completion/engine.py", "runtime/model.py", "config.py", "completion/prompt.py", "fim/layout.py")]


# ---- the drafter ------------------------------------------------------------------------------------------------
def test_lookup_most_recent_longest_match():
    lk = PromptLookup([1, 2, 3, 9, 9, 5, 2, 3, 7, 8, 1, 2, 3], capacity=32)
    # "1 2 3" occurs at 0 (then 9 9 5); "2 3" more recently at 6 (then 7): the 3-gram wins, a match of 3 -> 1 token
    assert lk.match() == (3, 3)
    assert lk.draft(8) == [9]
    lk = PromptLookup([4, 1, 2, 3, 9, 9, 5, 6, 4, 1, 2, 3], capacity=32)
    assert lk.match() == (4, 4) and lk.draft(8) == [9, 9]   # the match extends back over the 4: two tokens
    assert lk.draft(1) == [9]
    lk = PromptLookup([5, 6, 7, 8], capacity=8)
    assert lk.match() == (-1, 0) and lk.draft(4) == []      # nothing repeats
    lk.append(5)
    lk.append(6)                                            # "5 6" again: 7 followed it
    assert lk.draft(4) == [7]


def test_lookup_long_match_drafts_up_to_k_and_never_past_the_end():
    seq = list(range(100, 140))
    lk = PromptLookup(seq[:30], capacity=4)
    for t in seq[30:] + seq[:35]:                           # (grows past its capacity)
        lk.append(t)
    at, ml = lk.match()
    assert at == 35 and ml == 32                            # measured back as far as MAX_BACK
    assert lk.draft(8) == (seq + seq)[35:43] and lk.draft(64) == (seq + seq)[35:51]  # half the match: 16
    lk = PromptLookup(seq + seq[:6])
    assert lk.match() == (6, 6) and lk.draft(8) == seq[6:9]
    lk = PromptLookup([1, 2, 1, 2, 1, 2], capacity=8)       # the continuation may run into the end itself
    assert lk.draft(8) == [1, 2]


def test_lookup_random_against_brute_force(rng):
    for _ in range(200):
        seq = rng.integers(0, 4, int(rng.integers(2, 40))).tolist()
        lk = PromptLookup(seq)
        want = (-1, 0)
        for n in (3, 2):
            if len(seq) <= n:
                continue
            starts = [i for i in range(len(seq) - n) if seq[i:i + n] == seq[-n:]]
            if starts:
                i = starts[-1]
                ml = n
                while ml < 32 and i + n - ml - 1 >= 0 and seq[i + n - ml - 1] == seq[-ml - 1]:
                    ml += 1
                want = (i + n, ml)
                break
        assert lk.match() == want, seq


def test_memory_draft_chains_confident_predictions():
    from ckls.runtime.draft import memory_draft

    mem = NgramMemory(4096)
    pattern = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    mem.add("a", [1, 2] + pattern + [3] + pattern + [4])   # the pattern twice, then it ends differently
    assert memory_draft(mem, [7, 8, 9, 10], 8) == [11, 12]          # a 4-token match: half of it
    assert memory_draft(mem, [1, 2, 7, 8, 9, 10, 11, 12], 8) == [13, 14, 15, 16]
    assert memory_draft(mem, [1, 2, 7, 8, 9, 10, 11, 12], 2) == [13, 14]
    assert memory_draft(mem, [9, 10, 11], 8) == []                   # too short a match
    assert memory_draft(mem, [12, 13, 14, 15, 16], 8) == []          # 3 and 4 follow equally often: no draft


def test_reading_order_puts_the_prefix_last():
    from ckls.completion.prompt import Prompt
    from ckls.fim.tokens import FimFormat

    fmt = FimFormat(pre=1, suf=2, mid=3, sep=None, stop_ids=(0,))
    head, pre, suf = [50, 51], [10, 11, 12], [20, 21]
    spm = head + [2] + suf + [1] + pre + [3]
    psm = head + [1] + pre + [2] + suf + [3]
    p = Prompt(spm, len(head), len(pre), len(suf), 0)
    assert reading_order(spm, p, fmt) == head + [2] + suf + [1] + pre
    assert reading_order(psm, p, fmt) == head + [2] + suf + [1] + pre
    assert reading_order(spm[:-1], p, fmt) == spm[:-1]      # not a FIM prompt's end: as it is


# ---- the property the identity rests on -------------------------------------------------------------------------
def batch_vs_steps(m, rng, lora: bool = False) -> int:
    """Positions compared; asserts a batched pass's rows equal one-token steps' logits exactly."""
    if lora:
        ad = LoraAdapter.for_model(m, rank=4, alpha=8.0, seed=1)
        for layer, target in ad.names():
            b = ad.b(layer, target)
            b[...] = rng.standard_normal(b.shape).astype(np.float32) * 0.02
        m.set_adapter(ad)
    n = 0
    for k in (1, 2, 3, 5, 8, 17):
        prompt = rng.integers(0, min(m.n_vocab, 900), int(rng.integers(5, 300))).tolist()
        draft = rng.integers(0, min(m.n_vocab, 900), k).tolist()
        m.forget()
        m.eval(prompt, 0, logits=False)
        rows = m.eval(draft, len(prompt), logits_all=True)
        m.truncate(len(prompt))
        for i, t in enumerate(draft):
            assert np.array_equal(m.eval([t], len(prompt) + i), rows[i]), (k, i)
            n += 1
    return n


@pytest.mark.parametrize("lora", [False, True])
def test_batched_rows_equal_steps_shipped_model(rng, lora):
    with load_model(default_model_path(), n_ctx=512, n_threads=2) as m:
        assert batch_vs_steps(m, rng, lora) == 36


@pytest.mark.parametrize("arch,shape,type", [("llama", "tiny", "f32"), ("qwen2", "mini", "q8_0"),
                                             ("qwen2", "mini", "q4_k"), ("llama", "mini", "q4_0"),
                                             ("llama", "mini", "q6_k")])
def test_batched_rows_equal_steps_synth(models, rng, arch, shape, type):
    with load_model(models.get(arch, shape, type), n_ctx=512, n_threads=2) as m:
        batch_vs_steps(m, rng)


# ---- Model.generate: the same tokens -----------------------------------------------------------------------------
class Ban:
    """A stateful constraint like token healing's: while `left` > 0 the tokens of the last yielded token's
    residue class are masked; the caller feeds each yielded token, as the engine does."""

    def __init__(self, mod: int, left: int):
        self.mod, self.left, self.last = mod, left, None

    def constrain(self, logits):
        if self.left > 0 and self.last is not None:
            logits[np.arange(len(logits)) % self.mod == self.last % self.mod] = -np.inf

    def feed(self, t):
        self.last = t
        self.left -= 1


def run(m, prompt, draft, max_tokens=48, ban=None, **kw):
    stats = {}
    b = Ban(*ban) if ban else None
    out = []
    for t in m.generate(prompt, max_tokens, draft=draft, stats=stats, constrain=b.constrain if b else None, **kw):
        out.append(t)
        if b:
            b.feed(t)
    return out, stats


def test_generate_identical_shipped_model(rng):
    accepted = 0
    with load_model(default_model_path(), n_ctx=1024, n_threads=2) as m:
        for path in SOURCES:
            with open(path, encoding="utf-8") as f:
                ids = m.tokenizer.encode(f.read())
            for _ in range(4):
                cut = int(rng.integers(64, len(ids) - 1))
                prompt = ids[max(0, cut - 600):cut]
                kw = dict(stop_ids=[m.tokenizer.encode("\n\n")[0]]) if rng.random() < 0.5 else {}
                ban = (7, 3) if rng.random() < 0.5 else None
                want, _ = run(m, prompt, 0, ban=ban, **kw)
                got, st = run(m, prompt, 8, ban=ban, **kw)
                assert got == want, (path, cut)
                assert m.cached_tokens == (prompt + got)[:len(m.cached_tokens)]
                assert len(m.cached_tokens) >= len(prompt) + len(got) - 1
                accepted += st["accepted"]
    assert accepted > 20  # code repeats itself: the drafts were taken (the comparison is not vacuous)


@pytest.mark.parametrize("arch,type", [("llama", "f32"), ("qwen2", "q8_0")])
def test_generate_identical_synth_memory_and_sampling(models, rng, arch, type):
    """Drafts from the prompt and from the repository memory leave the tokens as they were, with the memory's
    mix and with temperature sampling (the rng advances once per token either way)."""
    with load_model(models.get(arch, "mini", type), n_ctx=1024, n_threads=2) as m:
        mem = NgramMemory(4096)
        mem.add("a", rng.integers(0, 50, 400).tolist())
        for trial in range(8):
            prompt = rng.integers(0, 50, int(rng.integers(20, 200))).tolist()
            kw = {}
            if trial % 2:
                kw.update(memory=mem, memory_context=prompt[-16:], draft_memory=trial % 4 == 1)
            if trial % 4 >= 2:
                kw.update(temperature=0.8, top_k=40, seed=trial)
            if trial % 3 == 0:
                kw.update(stop_ids=[int(rng.integers(0, 50))])
            want, _ = run(m, prompt, 0, 64, ban=(5, 2), **kw)
            got, st = run(m, prompt, 8, 64, ban=(5, 2), **kw)
            assert got == want, trial
            # The same generation with the answer already in the text: every draft is right, so most tokens
            # are taken from drafts whatever loops these weights fall into (the comparison is not vacuous).
            got, st = run(m, prompt, 8, 64, ban=(5, 2), draft_base=prompt + want + prompt, **kw)
            assert got == want, trial
            assert st["accepted"] >= len(want) // 2, (trial, st)


def test_generate_draft_stop_and_close_leave_a_consistent_cache():
    with load_model(default_model_path(), n_ctx=512, n_threads=1) as m:
        ids = m.tokenizer.encode("x = 1\ny = 2\nx = 1\ny = 2\nx = 1\ny = 2\nx = 1\n")
        stop = line_breaks(m.tokenizer)
        st = {}
        gen = m.generate(ids, 20, draft=8, draft_stop=stop, stats=st)
        first = [next(gen) for _ in range(2)]
        gen.close()  # the caller stops early (the engine's post-processing does): drafts past it leave the cache
        assert m.cached_tokens == (ids + first)[:len(m.cached_tokens)]
        assert len(m.cached_tokens) >= len(ids) + 1
        full, st = run(m, ids, 8, 12, draft_stop=stop)
        assert full == run(m, ids, 0, 12)[0]
        assert st["drafted"] > 0


# ---- the engine, with its real stop rules ---------------------------------------------------------------------------
def engine_identical(model_path: str, py_rng, n: int, multiline: str, fim_order: str = "spm") -> tuple[int, int]:
    base = Settings(model_path=model_path, threads=2, latency_ms=60000, quick_start=False, multiline=multiline,
                    fim_order=fim_order)
    eng = Engine(base)
    accepted = generated = 0
    try:
        eng.load(base).result()
        assert eng.batch_exact
        for _ in range(n):
            path = py_rng.choice(SOURCES)
            with open(path, encoding="utf-8") as f:
                lines = f.read().split("\n")
            line = py_rng.randrange(len(lines))
            col = py_rng.randrange(len(lines[line]) + 1)  # mid-word cursors heal
            res = {}
            for spec in (0, 8):
                s = Settings(**{**base.as_dict(), "speculative_tokens": spec})
                eng.load(s).result()
                eng.forget_windows()
                res[spec] = complete_file(path, line, col, s, engine=eng)
            assert (res[8].raw, res[8].text, res[8].n_generated) == (res[0].raw, res[0].text, res[0].n_generated), \
                (path, line, col)
            assert res[0].n_drafted == 0
            accepted += res[8].n_accepted
            generated += res[8].n_generated
    finally:
        eng.close()
    return accepted, generated


@pytest.mark.parametrize("multiline", ["auto", "always"])
def test_engine_identical_shipped_model(py_rng, multiline):
    accepted, generated = engine_identical(default_model_path(), py_rng, 12, multiline)
    assert accepted > 0 and generated > 0


@pytest.mark.parametrize("fim_order", ["spm", "psm"])
def test_engine_identical_synth(models, py_rng, fim_order):
    accepted, _ = engine_identical(models.get("qwen2", "mini", "q8_0"), py_rng, 10, "always", fim_order)
    assert accepted > 0  # random weights loop, and the drafter follows


def test_engine_does_not_speculate_when_batches_differ():
    base = Settings(threads=1, latency_ms=60000, quick_start=False, multiline="always")
    eng = Engine(base)
    try:
        eng.load(base).result()
        eng.batch_exact = False  # as _calibrate leaves it when a batched pass's rows differ from one-token steps
        res = complete_file(SOURCES[0], 40, 0, base, engine=eng)
        assert res.n_drafted == 0 and res.n_steps >= res.n_generated - 1
    finally:
        eng.close()
