"""Token healing (ckls/completion/heal.py): the compatible-token search against brute force on the shipped
model's vocabulary, the constrain/feed/strip protocol, and a mid-identifier completion through the engine."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ckls.config import Settings
from ckls.completion.heal import Heal, Vocab, healing
from ckls.completion.oneshot import complete_file
from ckls.models import default_model_path
from ckls.runtime import load_model


@pytest.fixture(scope="module")
def tok():
    with load_model(default_model_path(), n_ctx=64, n_threads=1) as m:
        yield m.tokenizer


def brute(tok, need: bytes) -> set[int]:
    out = set()
    for i in range(tok.n_vocab):
        if tok.is_control(i):
            continue
        b = tok.token_bytes(i)
        if b and (b.startswith(need) or (len(b) < len(need) and need.startswith(b))):
            out.add(i)
    return out


def test_compatible_tokens_equal_brute_force(tok):
    seed = time.time_ns() % 2**32
    rng = np.random.default_rng(seed)
    v = Vocab(tok)
    needs = [b" ", b"    ", b"\n", b"cl", b"_stat", b"istics", b"\xc3", b"0", b"))"]
    needs += [tok.token_bytes(int(i)) for i in rng.integers(7, tok.n_vocab, 20)]
    for need in needs:
        assert set(v.compatible(need).tolist()) == brute(tok, need), (seed, need)


def test_constrain_feed_strip(tok):
    h = healing(tok, b"cl")
    logits = np.zeros(tok.n_vocab, dtype=np.float32)
    logits[tok.encode("x")[0]] = 5.0                      # the best token overall does not spell "cl"
    h.constrain(logits)
    allowed = np.isfinite(logits)
    assert allowed.sum() == len(brute(tok, b"cl")) and not allowed[tok.encode("x")[0]]
    h.feed(b"c")                                           # a proper prefix: "l" still owed
    assert h.need == b"l"
    h.feed(b"lass")
    assert h.need == b"" and h.strip(b"class Foo") == b"ass Foo"
    logits = np.arange(tok.n_vocab, dtype=np.float32)
    h.constrain(logits)                                    # nothing owed any more: logits untouched
    assert np.array_equal(logits, np.arange(tok.n_vocab, dtype=np.float32))
    assert Heal(None, b"").strip(b"abc") == b"abc" and healing(tok, b"zz").strip(b"z") == b""



def test_heal_split_holds_back_the_last_word(tok):
    from ckls.fim.layout import HEAL_TOKENS, heal_split

    def dec(ids):
        return tok.decode_bytes(ids).decode("utf-8", "replace")

    for text, word in [("        self.assertEqual(respons", "(respons"), ("        independenc", " independenc"),
                       ("    def format_value", "_value"), ("x = 1\n        ", "        "), ("f(a, b", " b")]:
        ids = tok.encode(text)
        kept, carry = heal_split(ids, text, dec, tok.pretokenize)
        assert carry == word, text
        # the kept ids are the text before the word, tokenized on their own: a boundary the model saw in training
        assert kept == tok.encode(text[: len(text) - len(word)]), text
        # without a pre-tokenizer only the last token goes back
        assert heal_split(ids, text, dec) == (ids[:-1], dec(ids[-1:]))
    # a word longer than HEAL_TOKENS tokens keeps all but its last token
    long = " " + "xq" * 40
    ids = tok.encode(long)
    assert len(ids) > HEAL_TOKENS
    assert heal_split(ids, long, dec, tok.pretokenize) == (ids[:-1], dec(ids[-1:]))
    assert heal_split([], "", dec, tok.pretokenize) == ([], "")

def test_mid_identifier_completion_finishes_the_word(tmp_path):
    """With healing the shipped model completes `compute_stat|` to the name defined above it; without, it
    started a new word after `stat` (`e(maximum, total)` at the time healing was added)."""
    f = tmp_path / "a.py"
    f.write_text("def compute_statistics(values):\n    total = sum(values)\n    return total / len(values)\n\n\n"
                 "result = compute_stat\n")
    r = complete_file(str(f), 5, 21, Settings(latency_ms=60_000, threads=1))
    assert r.text.startswith("istics"), r.text
