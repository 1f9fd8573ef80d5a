"""The end guard: a single-line suggestion may not stop while its line is syntactically open."""
import numpy as np
import pytest

from ckls.completion.unfinished import EndGuard, line_open


@pytest.mark.parametrize("line", [
    "class", "    import", "from x import (a, b", "x = foo(a", "y = [1, 2", "d = {'a': ", "s = 'abc",
    'name = f"{x', "total = a +", "x = obj.attr ==", "    return x and", "for i in", "    if not", "    assert", "lambda",
    "def f(x) ->", "x = a // (b", "with open(p) as", "if not isinstance(new_key",
])
def test_open_lines(line):
    assert line_open(line)


@pytest.mark.parametrize("line", [
    "", "    return x", "class Lexer:", "import sys", "x = foo(a)", "s = 'a # b'", "x = 1  # note (",
    "    pass", "y = [1, 2]", "    raise", "        ...", "from a import *", "d = {'a': (1, 2)}", "x = a // b",
    "    )", "print('it''s')", "    is raised.", 's = """doc', "x = foo(", "    result = call(a,", "data = {", "items = [",
])
def test_closed_lines(line):
    assert not line_open(line)


def test_c_like_lines():
    assert not line_open("#include <stdio.h>", c_like=True)
    assert not line_open("std::vector<int>", c_like=True)
    assert not line_open("x = a / b; // see (", c_like=True)
    assert line_open("int y = f(a + b", c_like=True)
    assert not line_open("int y = f(a,", c_like=True)
    assert line_open("x = a // (b", c_like=False)


def test_guard_masks_stops_only_while_the_line_is_open():
    stops = [0, 5]
    g = EndGuard("clas", stops, active=True)
    logits = np.zeros(8, dtype=np.float32)
    g.constrain(logits)
    assert np.isfinite(logits).all()                       # "clas" alone could end (an identifier)
    g.feed("s")                                           # "class": needs a name
    logits = np.zeros(8, dtype=np.float32)
    g.constrain(logits)
    assert np.isinf(logits[stops]).all() and np.isfinite(np.delete(logits, stops)).all()
    g.feed("s Lexer:")
    logits = np.zeros(8, dtype=np.float32)
    g.constrain(logits)
    assert np.isfinite(logits).all()
    g.feed("s Lexer(\n")                                   # a newline ends the guard's line
    logits = np.zeros(8, dtype=np.float32)
    g.constrain(logits)
    assert np.isfinite(logits).all()


def test_guard_inactive_when_off():
    g = EndGuard("x = foo(a", [0], active=False)
    logits = np.zeros(3, dtype=np.float32)
    g.constrain(logits)
    assert np.isfinite(logits).all()
