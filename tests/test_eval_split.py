"""The held-out split: fixed by path and seed, independent of listing order and of other files."""
from __future__ import annotations

import os

import pytest

from ckls.eval import held_out_files, source_files, split_files


def make_tree(root, names):
    for n in names:
        p = os.path.join(root, n)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(f"# {n}\nx = 1\n")


NAMES = [f"pkg/mod_{i}.py" for i in range(60)] + [f"csrc/k{i}.c" for i in range(20)] + ["setup.py"]


def test_source_files_skips_build_hidden_and_foreign_files(tmp_path):
    make_tree(tmp_path, NAMES + ["build/lib/pkg/x.py", ".git/hooks/a.py", "pkg/__pycache__/m.py",
                                 "docs/index.rst", "pkg/data.json", "x.egg-info/y.py", ".hidden/z.py"])
    files = source_files(tmp_path)
    assert files == sorted(NAMES)


def test_split_is_deterministic_and_seeded(tmp_path):
    make_tree(tmp_path, NAMES)
    train, held = split_files(tmp_path, 0.25, seed=3)
    assert sorted(train + held) == sorted(NAMES) and not set(train) & set(held)
    assert held == held_out_files(tmp_path, 0.25, seed=3)
    assert 5 <= len(held) <= 40           # about a quarter of 81
    assert held_out_files(tmp_path, 0.25, seed=4) != held
    # the same split from a listing in another order
    assert split_files(tmp_path, 0.25, 3, files=list(reversed(NAMES)))[1] == held


def test_adding_files_does_not_move_the_others(tmp_path):
    make_tree(tmp_path, NAMES)
    held = set(held_out_files(tmp_path, 0.3, seed=0))
    make_tree(tmp_path, [f"pkg/new_{i}.py" for i in range(30)])
    held2 = set(held_out_files(tmp_path, 0.3, seed=0))
    assert held2 - held and all(f.startswith("pkg/new_") for f in held2 - held)
    assert held <= held2


def test_small_trees_hold_out_one_file_and_bad_fractions_fail(tmp_path):
    make_tree(tmp_path, ["a.py", "b.py"])
    assert len(held_out_files(tmp_path, 0.0001, seed=0)) == 1
    assert held_out_files(tmp_path, 0.0, seed=0) == []
    assert held_out_files(tmp_path, 1.0, seed=0) == ["a.py", "b.py"]
    with pytest.raises(ValueError):
        held_out_files(tmp_path, 1.5)
    assert held_out_files(tmp_path / "empty_missing", 0.5) == []
