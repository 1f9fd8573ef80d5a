"""Edit distance against the textbook table on fresh random strings, and the metrics on hand-made cases."""
from __future__ import annotations

import random
import sys
import time

import pytest

from ckls.eval.metrics import edit_similarity, exact_match, levenshtein


def table_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_distance_matches_the_table_on_random_strings():
    seed = time.time_ns() % 2**32
    print(f"seed {seed}")
    rng = random.Random(seed)
    for _ in range(1500):
        alphabet = rng.choice(["ab", "abc ", "def(x):\n\t", "αβγ😀ab"])
        # lengths across the 63/64/65 bits a machine word would have held, and empty strings
        a = "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2, 7, 63, 64, 65, rng.randint(0, 150)])))
        b = "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 3, 64, rng.randint(0, 150)])))
        assert levenshtein(a, b) == table_distance(a, b), (seed, a, b)
        assert levenshtein(b, a) == levenshtein(a, b)


@pytest.mark.parametrize("a,b,d", [("", "", 0), ("abc", "", 3), ("", "xy", 2), ("kitten", "sitting", 3),
                                   ("flaw", "lawn", 2), ("same", "same", 0), ("return x", "return  x", 1)])
def test_distance_hand_cases(a, b, d):
    assert levenshtein(a, b) == d


def test_edit_similarity():
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("abc", "") == 0.0
    assert edit_similarity("xyz", "abc") == 0.0
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("self.x = 1", "self.x = 2") == pytest.approx(0.9)


def test_exact_match_ignores_only_trailing_whitespace_and_line_ends():
    assert exact_match("x = 1  ", "x = 1")
    assert exact_match("a:\r\n    b\n", "a:\n    b")
    assert not exact_match(" x = 1", "x = 1")        # a leading space would be inserted into the code
    assert not exact_match("x = 1", "x = 1)")
    assert not exact_match("a\nb", "a\n  b")
    assert exact_match("", "")


def test_distance_of_a_long_block_takes_one_pass():
    """The bit-parallel form's cost, counted rather than timed: lines run in levenshtein grow with the strings'
    lengths (one pass over each), where the quadratic table's would grow with their product (~600,000 here)."""
    a = "    for item in items:\n        total += item.price * item.count\n" * 12
    b = a.replace("price", "cost").replace("count", "n")
    lines = 0

    def count(frame, event, arg):
        nonlocal lines
        if frame.f_code is not levenshtein.__code__:
            return None
        lines += event == "line"
        return count

    outer = sys.gettrace()
    sys.settrace(count)
    try:
        d = levenshtein(a, b)
    finally:
        sys.settrace(outer)
    assert d == table_distance(a, b)
    assert 0 < lines < 20 * (len(a) + len(b)), lines


@pytest.mark.parametrize("pred,target,prefix,kind", [
    ("x = 1", "x = 1", "", "match"), ("", "x", "", "empty"), ("x = 1", "x=1", "", "whitespace"),
    ("self.f", "self.foo(1)", "", "stops early"), ("self.foo(1))", "self.foo(1)", "", "runs on"),
    ("t = []", "_level = 0", "self.indent", "mid-word"), ("self.bar(x)", "self.foo(x)", "", "wrong identifier"),
    ("return foo_bar", "return foo_baz", "", "wrong identifier"), ("f(1)", "f(2)", "", "wrong literal"),
    ("f('a')", "f('b')", "", "wrong literal"), ("x + y", "x * y", "", "other")])
def test_misses_are_classified(pred, target, prefix, kind):
    from ckls.eval.report import classify

    assert classify(pred, target, prefix) == kind
