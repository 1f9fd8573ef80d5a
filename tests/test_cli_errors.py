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


# (arguments, a word the one line must hold, exit status: 2 for usage, 1 for a file or model that will not do,
# 3 for the kernel and verify commands' own errors)
BAD = [
    (["complete", "{d}/nosuch.py", "--line", "1", "--col", "1"], "No such file", 1),
    (["complete", "{d}", "--line", "1", "--col", "1"], "is a folder", 2),
    (["complete", "{src}", "--line", "99999", "--col", "1"], "outside", 2),
    (["complete", "{src}", "--line", "1", "--col", "500"], "outside line 1", 2),
    (["complete", "{src}", "--line", "0", "--col", "1"], "must be 1 or more", 2),
    (["complete", "{src}", "--line", "x", "--col", "1"], "not a whole number", 2),
    (["complete", "{src}"], "required", 2),
    (["complete", "{src}", "--line", "1", "--col", "1", "--threads", "-3"], "outside", 2),
    (["complete", "{src}", "--line", "1", "--col", "1", "--quick-start", "maybe"], "true or false", 2),
    (["complete", "{src}", "--line", "1", "--col", "1", "--fim-order", "xyz"], "invalid choice", 2),
    (["complete", "{src}", "--line", "1", "--col", "1", "--debounce-ms", "5"], "unrecognized", 2),
    (["complete", "{src}", "--line", "1", "--col", "1", "--model", "{d}/none.gguf"], "--model", 1),
    (["complete", "{src}", "--line", "1", "--col", "1", "--model", "{src}"], "too small", 1),
    (["generate", "-p", "x", "-n", "-5"], "must be 1 or more", 2),
    (["generate", "-p", "x", "--temperature", "abc"], "invalid float", 2),
    (["generate", "-p", "x", "--top-p"], "expected one argument", 2),
    (["generate", "-p", "x", "--ctx", "8"], "exceed --ctx", 2),
    (["generate", "-p", "x", "--model", "{d}"], "Is a directory", 1),
    (["generate", "-p", "x", "--model", "{d}/none.gguf"], "No such file", 1),
    (["generate", "--bogus"], "unrecognized arguments", 2),
    (["model"], "required", 2),
    (["model", "info", "{src}"], "too small", 1),
    (["model", "info", "{d}/none.gguf"], "No such file", 1),
    (["model", "quantize", "{src}", "{d}/out.gguf"], "--type", 2),
    (["model", "quantize", "{src}", "{d}/out.gguf", "--type", "q9"], "invalid choice", 2),
    (["model", "quantize", "{d}/none.gguf", "{d}/out.gguf", "--type", "q4_k"], "No such file", 1),
    (["bench"], "required", 2),
    (["bench", "runtime", "--repeats", "x"], "invalid int", 2),
    (["eval"], "required", 2),
    (["eval", "completion"], "--repo", 2),
    (["eval", "completion", "--repo", "{d}/nosuch"], "not a directory", 2),
    (["tune"], "required", 2),
    (["tune", "{d}/nosuch"], "not a folder", 2),
    (["serve", "--threads", "abc"], "integer", 2),
    (["serve", "--log-level", "loud"], "invalid choice", 2),
    (["verify"], "required", 2),
    (["verify", "{d}/nosuch.py::f", "{d}/k.c"], "spec", 3),
    (["kernel"], "required", 2),
    (["kernel", "x.py::f", "--lang", "fortran"], "invalid choice", 2),
    (["skills"], "required", 2),
    (["skills", "bogus"], "invalid choice", 2),
    (["editor", "install", "emacs"], "invalid choice", 2),
    (["editor", "install", "vscode", "--source", "{d}"], "no VS Code extension source", 1),
    (["nosuchcommand"], "invalid choice", 2),
    (["--bogus"], "unrecognized arguments", 2),
]


@pytest.mark.parametrize("args,says,code", BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_invocations_get_one_line_not_a_traceback(files, args, says, code):
    d, src = files
    p = ckls(*[a.format(d=d, src=src) for a in args])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in p.stderr and len(lines) == 1 and says in lines[0], p.stderr
    assert p.returncode == code, (p.returncode, p.stderr)


def test_the_table_is_long_enough():
    assert len(BAD) >= 25


def test_bare_ckls_at_a_terminal_says_how_to_use_it():
    master, slave = os.openpty()
    try:
        p = ckls(stdin=slave)
    finally:
        os.close(slave)
        os.close(master)
    assert p.returncode == 2 and "language server" in p.stderr and "ckls complete" in p.stderr
