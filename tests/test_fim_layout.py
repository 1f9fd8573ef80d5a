"""One prompt layout: the server's prompt at a cursor and the training example for the same cursor are the same
token ids, up to and including <|fim_middle|>; the text the server heals is the head of the training middle.
Checked through the server's PromptBuilder, the tuner's encoder (runtime tokenizer) and the factory's batch
encoder (HF tokenizers rebuilt from the shipped model's GGUF vocabulary)."""
from __future__ import annotations

import pytest

from ckls.completion.context import Context
from ckls.completion.prompt import PromptBuilder
from ckls.fim import layout
from ckls.fim.tokens import FIM_MID
from ckls.models import default_model_path
from ckls.runtime import load_model
from ckls.tune.dataset import SampleMaker

FILE = '''import os


def read_lines(path, encoding="utf-8"):
    """Lines of a text file, without their line ends."""
    with open(path, encoding=encoding) as f:
        return [line.rstrip("\\n") for line in f]


def count_words(path):
    total = 0
    for line in read_lines(path):
        total += len(line.split())
    return total
'''
HEAD = [("text_util.py", "def split_words(s):\n"), ("fmt.py", "def show(n: int) -> str:\n    return f'{n:,}'\n")]


@pytest.fixture(scope="module")
def tok():
    path = default_model_path()
    if path is None:
        pytest.skip("the default model is not installed")
    with load_model(path, n_ctx=512, n_threads=1) as m:
        yield m.tokenizer


def cursors():
    """(prefix, middle, suffix) at an editor's cursors: mid-line, line start after indentation, end of a line, and
    inside words of two tokens or more (`.spl`, `=encodi`), where healing holds back the whole word."""
    out = []
    for needle, back in (("len(line.split())", 8), ("total = 0", 9), ("return total", 0), ("encoding=encoding)", 3),
                         ("len(line.split())", 12), ("encoding=encoding)", 15)):
        b = FILE.index(needle) + len(needle)
        a = b - len(needle) + back
        eol = FILE.index("\n", b)
        out.append((FILE[:a], FILE[a:eol], FILE[eol:]))
    return out


@pytest.mark.parametrize("order", ["spm", "psm"])
@pytest.mark.parametrize("which", range(6))
def test_server_prompt_is_the_training_example(tok, order, which):
    prefix, middle, suffix = cursors()[which]
    ctx = Context(uri="file:///w/app.py", path="app.py", language_id="python", before=prefix, after=suffix,
                  line_prefix=prefix.rsplit("\n", 1)[-1], line_suffix=suffix.split("\n", 1)[0],
                  line=prefix.count("\n"), col=len(prefix.rsplit("\n", 1)[-1]), extra=list(HEAD))
    served = PromptBuilder(tok, prefix_tokens=4096, suffix_tokens=4096, extra_tokens=4096, fim_order=order).build(ctx)
    example = layout.example(layout.head(HEAD, "app.py"), prefix, suffix, middle, order)

    tuner = SampleMaker(tok, seq_len=4096)._encode_layout(example)
    n = len(served.tokens)
    assert tuner[:n] == served.tokens
    assert served.tokens[-1] == tok.fim_mid_id
    # what the server held back for healing is where the training middle starts
    assert tuner[n:-1] == tok.encode(served.heal.decode() + middle)
    assert served.heal and prefix.endswith(served.heal.decode())


def test_factory_encoder_gives_the_same_ids(tok):
    tokenizers = pytest.importorskip("tokenizers")
    from ckls.runtime.gguf_file import read_gguf
    from ckls.train import fim as factory
    from ckls.train import tokenizer as tk

    _ = tokenizers
    g = read_gguf(default_model_path())
    text = [[v.decode() if isinstance(v, bytes) else v for v in g.get(k)]
            for k in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges")]
    hf = tk.for_data(tk.from_gguf_vocab(text[0], text[1], list(g.get("tokenizer.ggml.token_type"))))
    for order in ("spm", "psm"):
        for prefix, middle, suffix in cursors():
            example = layout.example(layout.head(HEAD, "app.py"), prefix, suffix, middle, order)
            stream, counts, mask, _ = factory.encode_layouts([example], hf)
            runtime = SampleMaker(tok, seq_len=4096)._encode_layout(example)
            assert [int(t) for t in stream] == runtime
            mid = runtime.index(tok.fim_mid_id) + 1
            assert not mask[:mid].any() and mask[mid:].all()


def test_layout_pieces():
    h = layout.head([("a.py", "x = 1\n")], "b.py")
    assert h == [("<|file_sep|>",), "a.py\nx = 1\n", ("<|file_sep|>",), "b.py\n"]
    assert layout.head([], "b.py") == []
    spm = layout.cursor(h, "pre", "suf")
    assert spm[len(h):] == [("<|fim_suffix|>",), "suf", ("<|fim_prefix|>",), ("pre", "pre"), (FIM_MID,)]
    assert layout.cursor([], "p", "s", has_fim=False) == [("pre", "p")]
