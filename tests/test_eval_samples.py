"""Completion positions: what the document holds at the cursor and what the target is, for lines and blocks in
Python and C, and the same samples for the same seed."""
from __future__ import annotations

import random

from ckls.eval.samples import block_positions, block_sample, line_positions, line_sample, make_samples

PY = """import os


def area(w, h):
    # rectangle
    return w * h


class Box:
    def __init__(self, w):
        self.w = w

        self.h = w
    def size(self):
        return area(self.w, self.h)
"""

C = """#include <stdio.h>

int add(int a, int b) {
    int c = a + b; /* { not a brace */
    if (c > 0) {
        c = -c;
    }
    return c;
}
"""


def test_line_sample_cuts_the_line_at_the_cursor():
    lines = PY.splitlines(keepends=True)
    assert line_positions(lines) == [0, 3, 4, 5, 8, 9, 10, 12, 13, 14]
    for seed in range(20):
        s = line_sample("geo.py", "python", lines, 5, random.Random(seed))
        doc = s.text.split("\n")
        assert 4 <= s.col < len("    return w * h")
        assert doc[5] == "    return w * h"[:s.col]
        assert doc[5] + s.target == "    return w * h"
        assert s.text.split("\n")[6:] == PY.split("\n")[6:]   # the lines below stay as the suffix
        assert s.kind == "line" and s.line == 5


def test_python_blocks_run_to_the_dedent():
    lines = PY.splitlines(keepends=True)
    blocks = block_positions(lines, braces=False)
    assert blocks == [(4, 6), (9, 15), (10, 13), (14, 15)]
    s = block_sample("geo.py", "python", lines, 10, 13, max_lines=8)
    assert s.target == "self.w = w\n\n        self.h = w"
    assert s.col == 8 and s.text.split("\n")[10] == " " * 8
    assert s.text.split("\n")[11] == "    def size(self):"
    # cut to the server's line limit
    assert block_sample("geo.py", "python", lines, 9, 15, max_lines=2).target == \
        "def __init__(self, w):\n        self.w = w"


def test_c_blocks_end_before_the_closing_brace():
    lines = C.splitlines(keepends=True)
    blocks = block_positions(lines, braces=True)
    assert blocks == [(3, 8), (5, 6)]
    s = block_sample("m.c", "c", lines, 3, 8, max_lines=8)
    assert s.target.split("\n")[0] == "int c = a + b; /* { not a brace */"
    assert s.target.split("\n")[-1] == "    return c;"
    assert s.text.split("\n")[3:5] == ["    ", "}"]


def test_make_samples_is_fixed_by_the_seed(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "geo.py").write_text(PY)
    (tmp_path / "m.c").write_text(C)
    (tmp_path / "bin.py").write_bytes(b"\xff\xfe\x00garbage")
    files = ["pkg/geo.py", "m.c", "bin.py"]
    a = make_samples(str(tmp_path), files, 6, 3, seed=1)
    assert a == make_samples(str(tmp_path), files, 6, 3, seed=1)
    assert a != make_samples(str(tmp_path), files, 6, 3, seed=2)
    assert sum(s.kind == "line" for s in a) == 6 and sum(s.kind == "block" for s in a) == 3
    assert {s.language_id for s in a} <= {"python", "c"} and all(s.path != "bin.py" for s in a)
    assert all(s.target.strip() for s in a)
    # more samples than positions: every position once
    assert len([s for s in make_samples(str(tmp_path), files, 1000, 0) if s.kind == "line"]) == 10 + 8
