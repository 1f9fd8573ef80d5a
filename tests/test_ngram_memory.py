"""The repository memory (native/src/ngram_memory.c through ckls.runtime.ngram_memory): the C API against a
Python reference of the same memory on random token streams (fresh seeds each run), its bounds, odd inputs,
the mix into logits, and the engine moving a completion toward a pattern the repository repeats."""
from __future__ import annotations

import contextlib
import os
import random
import time

import numpy as np
import pytest

from ckls.native import NativeError, check, ffi, lib
from ckls.runtime.ngram_memory import MAX_MATCH, RULES, MixRule, NgramMemory

SEED = random.SystemRandom().randrange(1 << 30)


class RefMemory:
    """The memory's documented behaviour, plainly: files in add order, the newest occurrences first."""

    def __init__(self, cap: int):
        self.cap = cap
        self.files: list[tuple[str, list[int]]] = []   # oldest first

    def add(self, key, toks):
        self.remove(key)
        toks = list(toks)[: self.cap]
        if not toks:
            return 0
        while self.files and sum(len(t) for _, t in self.files) + len(toks) > self.cap:
            self.files.pop(0)
        self.files.append((key, toks))
        return len(toks)

    def remove(self, key):
        n = len(self.files)
        self.files = [(k, t) for k, t in self.files if k != key]
        return n != len(self.files)

    @property
    def n_tokens(self):
        return sum(len(t) for _, t in self.files)

    def predict(self, ctx, max_visits):
        ctx = list(ctx)
        if len(ctx) < 2:
            return 0, []
        max_len = min(len(ctx), MAX_MATCH)
        best, counts, visits = 0, {}, 0
        for _, t in reversed(self.files):
            for p in range(len(t) - 1, 1, -1):
                if visits >= max_visits:
                    break
                if t[p - 2] != ctx[-2] or t[p - 1] != ctx[-1]:
                    continue
                visits += 1
                n = 2
                while n < max_len and p - n - 1 >= 0 and t[p - n - 1] == ctx[-n - 1]:
                    n += 1
                if n > best:
                    best, counts = n, {}
                if n == best:
                    counts[t[p]] = counts.get(t[p], 0) + 1
        return best, sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _stream(rng, n, vocab):
    # repetitive like code: pieces of earlier streams come back
    out = []
    while len(out) < n:
        if out and rng.random() < 0.4:
            a = rng.randrange(len(out))
            out += out[a: a + rng.randrange(2, 12)]
        else:
            out.append(rng.randrange(vocab))
    return out[:n]


@pytest.mark.parametrize("trial", range(4))
def test_predict_matches_reference_on_random_streams(trial):
    rng = random.Random(SEED + trial)
    cap = rng.choice([16, 37, 200, 900])
    vocab = rng.choice([3, 8, 50])
    visits = rng.choice([1, 3, 64, 1024])
    mem, ref = NgramMemory(cap), RefMemory(cap)
    keys = [f"f{i}.py" for i in range(8)]
    for step in range(120):
        op = rng.random()
        k = rng.choice(keys)
        if op < 0.6:
            toks = _stream(rng, rng.choice([0, 1, 2, 5, 30, cap // 3, cap + 7]), vocab)
            assert mem.add(k, toks) == ref.add(k, toks), f"seed {SEED + trial}"
        elif op < 0.8:
            assert mem.remove(k) == ref.remove(k), f"seed {SEED + trial}"
        elif op < 0.82:
            mem.clear()
            ref.files = []
        assert mem.n_tokens == ref.n_tokens <= cap
        assert mem.n_files == len(ref.files)
        for _ in range(5):
            if ref.files and rng.random() < 0.7:  # a context that occurs, sometimes with a changed head
                _, t = rng.choice(ref.files)
                e = rng.randrange(len(t) + 1)
                ctx = t[max(0, e - rng.randrange(0, 70)): e]
                if ctx and rng.random() < 0.3:
                    ctx[0] = rng.randrange(vocab)
            else:
                ctx = _stream(rng, rng.randrange(0, 80), vocab)
            got = mem.predict(ctx, max_visits=visits)
            assert got == ref.predict(ctx, visits), f"seed {SEED + trial}, step {step}, ctx {ctx}"


def test_capacity_bounds_and_oldest_file_evicted():
    mem = NgramMemory(1000)
    for i in range(50):
        mem.add(f"f{i}", list(range(i, i + 90)))
        assert mem.n_tokens <= 1000
    assert mem.n_tokens == 990 and mem.n_files == 11  # f39..f49, the newest
    assert not mem.remove("f38") and mem.remove("f39")
    assert mem.add("huge", list(range(5000))) == 1000 and mem.n_files == 1
    assert mem.predict([998, 999]) == (0, [])         # beyond its head: not kept
    assert mem.predict([997, 998]) == (2, [(999, 1)])
    # saving the same file again and again leaves one copy (dead ones are compacted away)
    for i in range(300):
        mem.add("a.py", [1, 2, 3, i % 7])
    assert mem.n_tokens == 4 + 996 or mem.n_files >= 1
    assert mem.predict([1, 2]) == (2, [(3, 1)])
    assert mem.predict([2, 3])[1] == [(299 % 7, 1)]


def test_hidden_file_is_kept_but_never_predicts():
    mem = NgramMemory(4096)
    mem.add("a.py", [1, 2, 3, 4])
    mem.add("b.py", [1, 2, 5])
    assert mem.predict([1, 2]) == (2, [(3, 1), (5, 1)])
    assert mem.hide("a.py") and not mem.hide("absent.py")
    assert mem.predict([1, 2]) == (2, [(5, 1)]) and mem.n_tokens == 7 and mem.n_files == 2
    mem.add("a.py", [1, 2, 6])                      # a new copy (a save) of a hidden file stays hidden
    assert mem.predict([1, 2]) == (2, [(5, 1)])
    for i in range(200):                            # and through compaction
        mem.add("c.py", [9, 9, i % 5])
    assert mem.predict([1, 2]) == (2, [(5, 1)])
    assert mem.hide("a.py", False)
    assert mem.predict([1, 2]) == (2, [(5, 1), (6, 1)])
    with pytest.raises(NativeError):
        check(lib.ckls_ngram_memory_hide(ffi.NULL, 0, 1))


def test_held_document_hides_its_saved_copy():
    from ckls.completion.memory import DOCUMENT_KEY, RepoMemory
    from ckls.runtime import load_model

    if not os.path.isfile(MODEL):
        pytest.skip("no shipped model")
    with load_model(MODEL, n_ctx=64, n_threads=1) as m:
        tok = m.tokenizer
    mem = RepoMemory(tok, capacity_tokens=4096)
    saved = "def f():\n    a = 1\n    b = 2\n"
    mem.add_file("m.py", saved)
    ctx = tok.encode("def f():\n    a = 1\n")
    nxt = tok.encode("    b")[0]
    assert nxt in [t for t, _ in mem.native.predict(ctx)[1]]
    # the user opens a new line below `a = 1`: the saved copy would continue it with the line below
    assert mem.hold_document("def f():\n    a = 1\n", "    b = 2\n", "m.py")
    assert nxt not in [t for t, _ in mem.native.predict(ctx)[1]]
    mem.add_file("m.py", saved)                     # saved again meanwhile: still hidden
    assert nxt not in [t for t, _ in mem.native.predict(ctx)[1]]
    assert mem.hold_document("x = 1\n", "", "other.py")  # another document: m.py speaks again
    assert nxt in [t for t, _ in mem.native.predict(ctx)[1]]
    assert DOCUMENT_KEY + "<" in mem.native._ids

def test_odd_inputs_are_errors_not_crashes():
    assert lib.ckls_ngram_memory_create(15) == ffi.NULL
    assert lib.ckls_ngram_memory_create(-1) == ffi.NULL
    assert lib.ckls_ngram_memory_create(lib.CKLS_NGRAM_MAX_CAPACITY + 1) == ffi.NULL
    with pytest.raises(NativeError):
        NgramMemory(3)
    assert lib.ckls_ngram_memory_add(ffi.NULL, 0, ffi.NULL, 0) == lib.CKLS_EINVAL
    assert lib.ckls_ngram_memory_remove(ffi.NULL, 0) == lib.CKLS_EINVAL
    assert lib.ckls_ngram_memory_tokens(ffi.NULL) == lib.CKLS_EINVAL
    m = NgramMemory(64)
    p = m._ptr
    assert lib.ckls_ngram_memory_add(p, 1, ffi.NULL, 5) == lib.CKLS_EINVAL
    assert lib.ckls_ngram_memory_add(p, 1, ffi.new("int32_t[1]"), -1) == lib.CKLS_EINVAL
    # any int32 is a token to the memory (negative, huge); the mix ignores ids outside the vocabulary
    m.add("x", [-5, 2 ** 31 - 1, -5, 2 ** 31 - 1, 7, -5, 2 ** 31 - 1, 9])
    assert m.predict([-5, 2 ** 31 - 1]) == (2, [(-5, 1), (7, 1), (9, 1)])
    lg = np.zeros(4, dtype=np.float32)
    assert m.mix(lg, np.array([-5, 2 ** 31 - 1], dtype=np.int32)) == 0.0 and not lg.any()
    ids = ffi.new("int32_t[4]")
    assert lib.ckls_ngram_memory_predict(p, ffi.NULL, 3, 0, ids, ids, 4, ffi.NULL) == lib.CKLS_EINVAL
    assert lib.ckls_ngram_memory_predict(p, ffi.NULL, 0, 0, ids, ids, 4, ffi.NULL) == 0
    assert lib.ckls_ngram_memory_predict(p, ids, -1, 0, ids, ids, 4, ffi.NULL) == lib.CKLS_EINVAL
    assert lib.ckls_ngram_memory_predict(p, ids, 2, 0, ffi.NULL, ids, 4, ffi.NULL) == lib.CKLS_EINVAL
    lg = np.zeros(8, dtype=np.float32)
    par = ffi.new("ckls_ngram_mix_params *", {"min_match": 2, "lambda_max": 0.5, "max_visits": -3})
    assert lib.ckls_ngram_memory_mix(p, ffi.from_buffer("float[]", lg), 0, ids, 2, par, ffi.NULL) == lib.CKLS_EINVAL
    assert lib.ckls_ngram_memory_mix(p, ffi.from_buffer("float[]", lg), 8, ids, 2, ffi.NULL, ffi.NULL) \
        == lib.CKLS_EINVAL
    # a few tokens past a random buffer; predict with cap 0 counts without writing
    m.add("y", [1, 2, 3, 1, 2, 4])
    ctx = np.array([1, 2], dtype=np.int32)
    assert lib.ckls_ngram_memory_predict(p, ffi.from_buffer("int32_t[]", ctx), 2, 0, ffi.NULL, ffi.NULL, 0,
                                         ffi.NULL) == 2
    # all-masked, NaN or infinite logits: left as they are
    for bad in (np.full(8, -np.inf), np.array([np.nan] * 8), np.array([np.inf] + [0] * 7)):
        lg = bad.astype(np.float32)
        before = lg.copy()
        lib.ckls_ngram_memory_mix(p, ffi.from_buffer("float[]", lg), 8, ffi.from_buffer("int32_t[]", ctx), 2, par,
                                  ffi.NULL)
        assert np.array_equal(np.isnan(lg), np.isnan(before)) and np.all((lg == before) | np.isnan(before))


def test_weight_rules():
    m = NgramMemory(64, MixRule("t", min_match=3, full_match=6, lambda_max=0.8, count_prior=2.0, agreement=True))
    assert m.weight(2, 5, 5) == 0.0 and m.weight(3, 0, 0) == 0.0
    assert m.weight(3, 2, 2) == pytest.approx(0.8 * 1 / 4 * 2 / 4)
    assert m.weight(40, 2, 1) == pytest.approx(0.8 * 1 * 2 / 4 * 0.5)
    m.rule = MixRule("big", lambda_max=5.0)
    assert m.weight(2, 1, 1) == pytest.approx(0.95)  # capped below 1: the model always keeps a share
    for r in RULES.values():
        m.rule = r
        assert 0.0 <= m.weight(64, 1000, 1000) <= 0.95


def test_mix_is_the_interpolation_of_distributions():
    rng = np.random.default_rng(SEED)
    m = NgramMemory(256, MixRule("t", min_match=2, lambda_max=0.4))
    m.add("a", [5, 6, 7, 1, 5, 6, 7, 2, 5, 6, 9, 1, 5, 6, 7])
    ctx = np.array([5, 6], dtype=np.int32)
    assert m.predict(ctx) == (2, [(7, 3), (9, 1)])
    lg = rng.standard_normal(16).astype(np.float32) * 3
    lg[3] = -np.inf                                    # masked: stays masked
    p0 = np.exp(lg - lg.max()) / np.exp(lg - lg.max()).sum()
    out = lg.copy()
    w = m.mix(out, ctx)
    assert w == pytest.approx(0.4)
    q = np.zeros(16)
    q[7], q[9] = 0.75, 0.25
    want = (1 - w) * p0 + w * q
    got = np.exp(out - out[np.isfinite(out)].max())
    got[~np.isfinite(out)] = 0
    assert np.allclose(got / got.sum(), want / want.sum(), atol=1e-5)
    assert out[3] == -np.inf
    # the argmax moves to the memory's token when the model is unsure
    flat = np.zeros(16, dtype=np.float32)
    flat[2] = 0.5
    m.mix(flat, ctx)
    assert int(np.argmax(flat)) == 7


MODEL = os.path.join(os.path.dirname(__file__), "..", "ckls", "models", "default.gguf")


@contextlib.contextmanager
def greedy_engine(prefix_tokens: int):
    """The shipped model in an engine with a small context and no latency cap; complete(ctx) -> the suggestion."""
    from ckls.completion.engine import Engine, Job
    from ckls.config import Settings

    settings = Settings().merged({"n_ctx": 512, "threads": 1, "max_tokens": 24, "latency_ms": 60000,
                                  "prefix_tokens": prefix_tokens, "suffix_tokens": 32, "extra_tokens": 0},
                                 strict=True)[0]
    eng = Engine(settings)
    try:
        eng.load(settings).result()

        def complete(ctx):
            eng.forget_windows()
            return eng.submit(Job(ctx, deadline=time.monotonic() + 60, max_tokens=24)).result().text
        yield eng, complete
    finally:
        eng.close()


@pytest.mark.skipif(not os.path.isfile(MODEL), reason="no shipped model")
def test_engine_follows_a_pattern_the_repository_repeats():
    from ckls.completion.context import build_context
    from ckls.completion.memory import RepoMemory

    with greedy_engine(256) as (eng, run):
        # a project-specific call the model cannot guess, used the same way in several files
        line = "    result = frobnicate_quux_registry(zeta_handle, max_wobble=17, strict=False)\n"
        # the cursor after ` f`: healing holds that word back, and the repository's streams spell ` frobnicate`
        # as ` f`, `ro`, `b`, ... (a cursor after ` frob` leaves the model to pick ` fro` then `b`, which no stream
        # continues: a limit of greedy healing, not of the memory)
        before = "import os\n\n\ndef load(zeta_handle):\n    result = f"

        def complete():
            return run(build_context("file:///w/new.py", "python", before, "\n", 5, len("    result = f"), 0, None, 0))

        base = complete()
        mem = RepoMemory(eng.model.tokenizer, capacity_tokens=4096)
        for i in range(3):
            mem.add_file(f"mod{i}.py", f"def f{i}(zeta_handle):\n{line}    return result\n")
        eng.attach_memory(mem)
        assert "robnicate" not in base
        # a fixed 0.25 moves the argmax only where the model is unsure: toward the pattern
        mem.rule = "fixed"
        with_mem = complete()
        assert with_mem.startswith("robnicate_quux"), (base, with_mem)
        assert mem.stats()["spoke"] > 0
        # the default rule, confident in long matches, follows it to the end
        mem.rule = "length"
        assert "robnicate_quux_registry(zeta_handle" in complete()
        assert RepoMemory(eng.model.tokenizer).native.rule.name == "length"
        # a save that drops the pattern takes it out of the memory
        for i in range(3):
            mem.add_file(f"mod{i}.py", f"def f{i}():\n    return 0\n")
        assert "quux" not in complete()
        eng.attach_memory(None)
        assert complete() == base


@pytest.mark.skipif(not os.path.isfile(MODEL), reason="no shipped model")
def test_engine_remembers_the_open_document_beyond_the_prompt():
    from ckls.completion.context import build_context
    from ckls.completion.documents import Document
    from ckls.completion.memory import DOCUMENT_KEY, RepoMemory

    with greedy_engine(128) as (eng, run):
        lead = "    handle = zeta_open(path)\n    check = quux_guard(handle, level=3)\n"
        line = "    result = frobnicate_quux_registry(handle, max_wobble=17, strict=False)\n"
        filler = "".join(f"def helper_{i}(x):\n    return x * {i} + {i % 7}\n\n\n" for i in range(60))
        # the pattern sits far above the cursor, outside the prompt's prefix window
        text = f"def first(path):\n{lead}{line}    return result\n\n\n{filler}def load(path):\n{lead}    result = f\n"
        doc = Document("file:///w/new.py", text, "python")
        cur = text.count("\n") - 1  # the last line, "    result = f"
        before, after, first, ln, col = doc.window(cur, len("    result = f"), 128 * 6, 32 * 6)
        assert "frobnicate" not in before and ln == cur

        def complete(document):
            return run(build_context(doc.uri, "python", before, after, ln, col, first, None, 0, document=document))

        mem = RepoMemory(eng.model.tokenizer, capacity_tokens=8192)
        eng.attach_memory(mem)
        base = complete("")
        assert "robnicate" not in base and mem.n_tokens == 0
        head, tail = doc.around_line(cur)
        assert head.endswith(lead) and tail == "" and head.count("frobnicate_quux") == 1
        assert "robnicate_quux_registry(handle, max_wobble=17" in complete((head, tail, None))
        assert mem.n_files == 0 and mem.native.n_files == 1 and mem.native.n_tokens > 0  # (an empty part: nothing)
        # held once: the same text again is not re-tokenized; another document replaces it
        assert not mem.hold_document(head, tail) and mem.hold_document("x = 1\n", "y = 2\n")
        assert mem.native.n_files == 2 and "robnicate" not in complete(("x = 1\n", "y = 2\n", None))
        mem.clear()
        assert mem.hold_document(head, tail)
        # the two parts are two streams: the lines before the cursor's line are never followed by those after it
        mem.clear()
        mem.hold_document("a = 1\nb = 2\n", "c = 3\n")
        enc = eng.model.tokenizer.encode
        ml, preds = mem.native.predict(enc("a = 1\nb = 2\n"))
        assert enc("c")[0] not in [t for t, _ in preds]
        assert DOCUMENT_KEY.startswith("\0")

@pytest.mark.skipif(not os.path.isfile(MODEL), reason="no shipped model")
def test_eval_memory_never_holds_a_sampled_file(tmp_path, monkeypatch):
    import json

    import ckls.eval.runner as runner
    from ckls.eval.cli import main

    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text("def f(x):\n    y = x + 1\n    return y\n\n\ndef g():\n    return f(2)\n")
    seen = []
    real = runner.build_memory

    def spy(engine, repo, files, settings):
        seen.extend(files)
        return real(engine, repo, files, settings)

    monkeypatch.setattr(runner, "build_memory", spy)
    out = tmp_path / "r.json"
    assert main(["eval", "completion", "--repo", str(tmp_path), "--files", "a.py", "--samples", "2", "--blocks",
                 "0", "--memory", "--threads", "1", "--n-ctx", "512", "--json", str(out), "-q"]) == 0
    assert sorted(seen) == ["b.py", "c.py"]
    assert json.loads(out.read_text())["memory"] is True
