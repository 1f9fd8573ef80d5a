"""What a user gets back for a wrong invocation: a short message naming what is wrong, exit status 1 (or 2 for
usage), and never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ckls(*args: str, stdin=subprocess.DEVNULL, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "ckls", *args], stdin=stdin, capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    src = d / "a.py"
    src.write_text("def f(x):\n    return x\n")
    return d, src


BAD = [
    (["complete", "{d}/nosuch.py", "--line", "1", "--col", "1"], "No such file"),
    (["complete", "{d}", "--line", "1", "--col", "1"], "is a folder"),
    (["complete", "{src}", "--line", "99999", "--col", "1"], "outside"),
    (["complete", "{src}", "--line", "1", "--col", "500"], "outside line 1"),
    (["complete", "{src}", "--line", "0", "--col", "1"], "must be 1 or more"),
    (["complete", "{src}", "--line", "x", "--col", "1"], "not a whole number"),
    (["complete", "{src}"], "required"),
    (["generate", "-p", "x", "-n", "-5"], "must be 1 or more"),
    (["generate", "-p", "x", "--model", "{d}"], "ckls:"),
    (["generate", "-p", "x", "--model", "{d}/none.gguf"], "ckls:"),
    (["model", "info", "{src}"], "ckls:"),
    (["nosuchcommand"], "invalid choice"),
]


@pytest.mark.parametrize("args,says", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_invocations_get_one_line_not_a_traceback(files, args, says):
    d, src = files
    p = ckls(*[a.format(d=d, src=src) for a in args])
    assert p.returncode in (1, 2), (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr and says in p.stderr, p.stderr
    assert len([ln for ln in p.stderr.splitlines() if ln.strip()]) <= 3, p.stderr


def test_bare_ckls_at_a_terminal_says_how_to_use_it():
    master, slave = os.openpty()
    try:
        p = ckls(stdin=slave)
    finally:
        os.close(slave)
        os.close(master)
    assert p.returncode == 2 and "language server" in p.stderr and "ckls complete" in p.stderr
