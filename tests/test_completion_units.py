"""Units of the completion pipeline: documents and UTF-16 positions, settings, post-processing, the typed-ahead
cache, prompt layout and its stability between keystrokes, syntax context."""
from __future__ import annotations

import time

import pytest

from ckls.completion.cache import SuggestionCache
from ckls.config import Settings, SettingsError, add_cli_args, from_cli
from ckls.completion.context import ExtraContext, build_context, enclosing_scope, extract_definitions, names_near_cursor
from ckls.completion.documents import (Document, index_to_units, index_to_utf16, split_lines, units_to_index,
                                       utf16_to_index)
from ckls.completion.postprocess import Post, decide_shape, meaningful_text_right


# ---- documents ------------------------------------------------------------------------------------------------
def _utf16_col(line: str, idx: int) -> int:
    return len(line[:idx].encode("utf-16-le")) // 2


def _apply_reference(text: str, sl: int, sc: int, el: int, ec: int, new: str) -> str:
    """Edit through offsets computed independently: lines split on \\r\\n, \\r, \\n; columns in UTF-16 units."""
    import re

    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    bodies = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    bodies = [re.sub(r"(\r\n|\r|\n)$", "", b) for b in bodies]

    def off(line, col):
        if line >= len(starts):
            return len(text)
        body = bodies[line]
        units = 0
        for i, ch in enumerate(body):
            if units >= col:
                return starts[line] + i
            units += 2 if ord(ch) > 0xFFFF else 1
        return starts[line] + len(body)

    a, b = off(sl, sc), off(el, ec)
    return text[:a] + new + text[b:]


ALPHABET = ["a", "b", " ", "\n", "\r\n", "\r", "é", "😀", "\t", "{", "}"]


def test_documents_match_reference_on_random_edits(py_rng):
    rng = py_rng
    for _ in range(30):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 40)))
        doc = Document("file:///x", text)
        for _ in range(40):
            lines = split_lines(text)
            sl = rng.randrange(len(lines))
            el = rng.randrange(sl, min(len(lines), sl + 3))
            bl = lines[sl].rstrip("\r\n")
            sc = _utf16_col(bl, rng.randrange(len(bl) + 1))
            el_b = lines[el].rstrip("\r\n")
            ec = _utf16_col(el_b, rng.randrange(len(el_b) + 1))
            if (el, ec) < (sl, sc):
                ec = sc
            new = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 6)))
            text = _apply_reference(text, sl, sc, el, ec, new)
            doc.apply_change((sl, sc), (el, ec), new)
            assert doc.text == text, (seed, sl, sc, el, ec, new)
            assert "".join(doc.lines) == text and not doc.lines[-1].endswith(("\n", "\r"))


def test_utf16_columns():
    line = 'name = "Zoë 😀!"\n'
    assert utf16_to_index(line, 14) == 13  # the emoji is two UTF-16 units
    assert utf16_to_index(line, 13) == 13  # inside the pair: past the character
    assert utf16_to_index(line, 999) == len(line) - 1  # clamped before the line break
    assert index_to_utf16(line, 13) == 14
    d = Document("u", "ab\r\ncd")
    assert d.clamp(1, 5) == (1, 2) and d.clamp(7, 0) == (1, 2) and d.clamp(-1, 3) == (0, 0)


def test_window_is_bounded():
    d = Document("u", "".join(f"line {i}\n" for i in range(10000)))
    before, after, first, line, col = d.window(5000, 3, 200, 100)
    assert len(before) <= 200 and len(after) <= 100
    assert before.endswith("\nlin") and after.startswith("e 5000\n")
    assert first == 5000 - before.count("\n")


def test_huge_single_line_is_linear():
    """A 5 MB last line without a line break (minified code, generated data): open, keystrokes, positions and
    the window stay linear (the old line splitter re-scanned such a line from every offset: 5 MB never returned)."""
    t0 = time.monotonic()
    for enc in ("utf-16", "utf-8", "utf-32"):
        for body in ("y" * 5_000_000, "é😀" * 1_700_000):
            d = Document("u", "x = 1\n" + body, encoding=enc)
            assert len(d.lines) == 2 and d.lines[1] == body
            end = index_to_units(body, len(body), enc)
            assert d.clamp(1, end) == (1, len(body)) and d.clamp(1, 10 ** 9) == (1, len(body))
            for k in range(20):  # typing at the end of the long line, then a line break in the middle of it
                d.apply_change((1, end + k), (1, end + k), "z")
            d.apply_change((1, 6), (1, 6), "\n")
            assert len(d.lines) == 3 and len(d) == 6 + len(body) + 21
            before, after, *_ = d.window(2, 10 ** 9, 4000, 1000)
            assert len(before) == 4000 and before.endswith("z" * 20) and after == ""
    assert time.monotonic() - t0 < 30  # a hang guard, not a speed goal


def test_positions_in_every_encoding_match_a_plain_count(py_rng):
    rng = py_rng
    width = {"utf-16": lambda c: 2 if ord(c) > 0xFFFF else 1, "utf-32": lambda c: 1,
             "utf-8": lambda c: len(c.encode("utf-8", "surrogatepass"))}
    for _ in range(2000):
        enc = rng.choice(list(width))
        line = "".join(rng.choice(["a", "é", "😀", "\ud800", "\udc00", "中"]) for _ in range(rng.randrange(8)))
        offsets = [0]
        for c in line:
            offsets.append(offsets[-1] + width[enc](c))
        for u in range(-1, offsets[-1] + 3):
            want = next((i for i, o in enumerate(offsets) if o >= u), len(line)) if u > 0 else 0
            assert units_to_index(line + "\n", u, enc) == want, (seed, line, u, enc)
        for i in range(len(line) + 1):
            assert index_to_units(line, i, enc) == offsets[i], (seed, line, i, enc)


# ---- settings ---------------------------------------------------------------------------------------------------
def test_settings_from_every_source():
    s, problems = Settings().merged({"latencyMs": "250", "max-tokens": 32, "prefix_tokens": 100,
                                     "disabledLanguages": "markdown, plaintext", "trigger_with_text_right": "on"})
    assert (s.latency_ms, s.max_tokens, s.prefix_tokens) == (250, 32, 100) and not problems
    assert s.disabled_languages == ["markdown", "plaintext"] and s.trigger_with_text_right
    assert not s.language_enabled("markdown") and s.language_enabled("python")
    s2, problems = s.merged({"ckls": {"threads": -3, "fimOrder": "xyz", "bogus": 1, "nCtx": 4096}})
    assert s2.n_ctx == 4096 and s2.threads == s.threads and s2.fim_order == "spm" and len(problems) == 3
    with pytest.raises(SettingsError):
        Settings().merged({"latencyMs": 1.5}, strict=True)
    for huge in ("inf", "-inf", "1e400", float("inf")):  # a clear settings error, never an OverflowError
        with pytest.raises(SettingsError, match="should be an integer"):
            Settings().merged({"threads": huge}, strict=True)
    import argparse

    ap = argparse.ArgumentParser()
    add_cli_args(ap)
    args = ap.parse_args(["--latency-ms", "300", "--model", "/m.gguf", "--prefetch", "false"])
    s3 = Settings().merged(from_cli(args), strict=True)[0]
    assert (s3.latency_ms, s3.model_path, s3.prefetch) == (300, "/m.gguf", False)


def test_settings_toml(tmp_path):
    from ckls.config import load_toml

    (tmp_path / "ckls.toml").write_text('[ckls]\nlatency_ms = 123\ndisabled_languages = ["go"]\n')
    s = Settings().merged(load_toml(tmp_path / "ckls.toml"), strict=True)[0]
    assert s.latency_ms == 123 and s.disabled_languages == ["go"]
    assert load_toml(tmp_path / "missing.toml") == {}
    (tmp_path / "bad.toml").write_text("latency_ms = = 3")
    with pytest.raises(SettingsError):
        load_toml(tmp_path / "bad.toml")


# ---- post-processing --------------------------------------------------------------------------------------------
def ctx_at(text: str, marker: str = "|", language_id: str = "python", uri: str = "file:///a.py"):
    i = text.index(marker)
    before, after = text[:i], text[i + 1:]
    return build_context(uri, language_id, before, after, before.count("\n"), len(before.rsplit("\n", 1)[-1]), 0,
                         None, 0)


def test_single_line_in_a_line_multi_line_on_a_blank_line():
    c = ctx_at("def f(x):\n    y = |\n")
    sh = decide_shape(c)
    assert not sh.multiline
    p = Post(sh)
    assert p.early_stop("x + 1\n") and not p.early_stop("x + 1")
    assert p.finalize("x + 1\n    return y") == "x + 1"
    c = ctx_at("def f(x):\n    |\n\ndef g():\n    pass\n")
    sh = decide_shape(c)
    assert sh.multiline and sh.base_indent == 4
    p = Post(sh)
    # the block ends where indentation drops below the cursor's
    assert p.finalize("y = x + 1\n    return y\n\ndef h():\n    pass") == "y = x + 1\n    return y"
    assert p.early_stop("y = 1\n    return y\ndef h") and not p.early_stop("y = 1\n    return y\n")


def test_drops_suffix_repeats_and_degenerate_loops():
    c = ctx_at("def f(x):\n    |\n    return y\n")
    p = Post(decide_shape(c))
    assert p.finalize("y = x * 2\n    return y\n") == "y = x * 2"
    assert p.finalize("a = 1\n    a = 1\n    a = 1\n    a = 1") == "a = 1\n    a = 1"
    assert p.finalize("print('ab' 'ab' 'ab' 'ab' 'ab' 'ab')") == "print('ab'"
    # the closing bracket right of the cursor is not typed twice
    c = ctx_at("x = max(|)\n")
    assert Post(decide_shape(c)).finalize("a, b)") == "a, b"
    assert Post(decide_shape(c)).finalize("   \n") == ""


def test_braces_end_the_block():
    c = ctx_at("int f(int x) {\n    |\n}\n", language_id="c", uri="file:///a.c")
    sh = decide_shape(c)
    assert sh.multiline and sh.braces
    p = Post(sh)
    assert p.finalize("if (x) {\n        x++;\n    }\n    return x;\n}\nint g;") == \
        "if (x) {\n        x++;\n    }\n    return x;"


def test_text_right_of_cursor():
    assert meaningful_text_right("foo)")
    assert not meaningful_text_right(")];  ")
    assert not meaningful_text_right("")


# ---- cache ------------------------------------------------------------------------------------------------------
def test_typed_ahead_cache():
    c = SuggestionCache()
    c.put("u", "x = foo(", ")\n", "alpha, beta")
    assert c.get("u", "x = foo(", ")\n") == "alpha, beta"
    assert c.get("u", "x = foo(alp", ")\n") == "ha, beta"
    assert c.get("u", "x = foo(alpha, beta", ")\n") is None  # nothing left to show
    assert c.get("u", "x = foo(alx", ")\n") is None          # typed something else
    assert c.get("v", "x = foo(", ")\n") is None             # another document
    assert c.get("u", "x = foo(", "]\n") is None             # another suffix


# ---- syntax context ---------------------------------------------------------------------------------------------
def test_enclosing_scope_and_definitions():
    src = "class A:\n    def method(self, x):\n        return x\n\ndef top(y):\n    z = y\n"
    sc = enclosing_scope("python", src[: src.index("return") + 3], src[src.index("return") + 3:])
    assert sc.kind == "function_definition" and sc.name == "method" and "def method" in sc.header
    assert enclosing_scope("python", "x = 1\n", "") is None
    defs = extract_definitions("python", src)
    assert set(defs) >= {"A", "top", "method"} and defs["top"].startswith("def top(y):")
    csrc = "#define N 16\nstruct vec { float x, y; };\nstatic int dot(const struct vec *a) {\n  return 0;\n}\n"
    cdefs = extract_definitions("c", csrc)
    assert {"N", "vec", "dot"} <= set(cdefs) and "{" not in cdefs["dot"]
    cu = "__global__ void scale(float *x, int n) {\n  int i = threadIdx.x;\n  if (i < n) x[i] *= 2;\n}\n"
    assert "scale" in extract_definitions("cuda", cu)
    sc = enclosing_scope("cuda", cu[:60], cu[60:])
    assert sc is not None and sc.name == "scale"
    assert names_near_cursor("a = foo(bar)\nbaz.qu")[:3] == ["baz", "bar", "foo"]


def test_extra_context_is_stable_and_uses_other_files():
    ex = ExtraContext(chunk_lines=8)
    other = [f"def helper_{i}(v):\n" for i in range(40)]
    ex.note_chunk("file:///o.py", "o.py", other, 0)
    ex.index("file:///o.py", "python", "def scale_vec(v, k):\n    return [x * k for x in v]\n")
    c1 = ctx_at("import o\nw = scale_vec(v, 2)\nq = |")
    r1 = ExtraContext.render(ex, c1, 4000)
    assert [p for p, _ in r1] == ["o.py", "o.py"] and "def scale_vec" in r1[1][1]
    # typing more on the same line keeps the extra context identical (the model's cached prefix survives)
    for typed in "abc":
        c1.before += typed
        c1.line_prefix += typed
        assert ExtraContext.render(ex, c1, 4000) == r1
    # an edit far away from the previous one turns the previous region into a chunk
    lines = [f"line {i}\n" for i in range(200)]
    ex.note_edit("file:///cur.py", "cur.py", lines, 10)
    ex.note_edit("file:///cur.py", "cur.py", lines, 11)
    assert len(ex.chunks) == 1
    ex.note_edit("file:///cur.py", "cur.py", lines, 150)
    assert len(ex.chunks) == 2 and ex.chunks[-1].start <= 10 <= ex.chunks[-1].start + 8


def test_other_position_encodings():
    line = "a😀é|\n"
    assert [Document("u", line, encoding=e).clamp(0, c)[1] for e, c in
            (("utf-16", 3), ("utf-8", 5), ("utf-32", 2), ("utf-8", 7), ("utf-32", 3))] == [2, 2, 2, 3, 3]
    d = Document("u", line, encoding="utf-8")
    d.apply_change((0, 5), (0, 7), "x")  # replaces "é"
    assert d.text == "a😀x|\n"


def test_adaptive_debounce():
    from ckls.completion.scheduler import Scheduler

    sch = Scheduler(engine=None, settings=Settings())  # debounce 0..80 ms
    sch._interval_ema = 0.15   # normal typing: answer at once
    assert sch._debounce_s() == 0.0
    sch._interval_ema = 0.06   # a burst: wait about half the interval
    assert sch._debounce_s() == pytest.approx(0.03)
    sch.settings = Settings().merged({"debounceMs": 50, "debounceMaxMs": 40})[0]
    assert sch._debounce_s() == pytest.approx(0.05)  # the floor wins
