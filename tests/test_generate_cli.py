"""`ckls generate` stops where a completion would (the end of the block, a loop of repeated lines, EOS or a special
token) and never prints special-token text: the shared post-processing rules (ckls.completion.postprocess) in
real `python -m ckls generate` processes with the shipped model."""
from __future__ import annotations

import os
import subprocess
import sys

from ckls.completion.postprocess import Post, _repeat_cut, continuation_shape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def generate(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT}
    p = subprocess.run([sys.executable, "-m", "ckls", "generate", "-t", "1", *args], capture_output=True,
                       text=True, timeout=120, env=env)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    return p


def test_readme_demo_has_no_loop_and_no_special_tokens():
    out = generate("--prompt", "def read_lines(path):", "-q").stdout
    lines = out.rstrip("\n").split("\n")
    assert _repeat_cut(lines) is None, out  # was `if isinstance(path, str): path = str(path)` seven times
    assert "<|" not in out and lines[0].strip(), out


def test_repeat_penalty_never_prints_a_special_token():
    for extra in ([], ["--raw"]):
        out = generate("--prompt", "def read_lines(path):", "--repeat-penalty", "1.2", "-q", *extra).stdout
        assert "<|" not in out, out  # `<|fim_prefix|>` came out here: special tokens now end the text


def test_stops_at_the_end_of_the_block():
    p = generate("-p", "class Stack:\n    def __init__(self):\n", "-n", "200")
    body = [ln for ln in p.stdout.split("\n") if ln.strip()]
    assert body and all(len(ln) - len(ln.lstrip()) > 4 for ln in body), p.stdout  # inside __init__ only
    n = int(p.stderr.split("generated ")[1].split()[0])
    assert n < 200, p.stderr  # generation itself ended there, not at -n


def test_raw_prints_every_token():
    p = generate("--prompt", "def read_lines(path):", "--raw", "-n", "40")
    assert "generated 40 tokens" in p.stderr and "<|" not in p.stdout


def test_continuation_rules():
    loop = ["  # x", "    if a:", "        b()", "    if a:", "        b()", "    if a:", "        b()"]
    assert _repeat_cut(loop) == 3 and _repeat_cut(loop[:5]) is None
    post = Post(continuation_shape("def f(x):"), 1 << 30)
    assert post.finalize("\n".join(loop)) == "  # x\n    if a:\n        b()"
    assert post.finalize("\n    return x\n\ndef g():\n    pass") == "\n    return x"
    # a braces block keeps its closing line (nothing follows the prompt); the top level has no block end
    assert Post(continuation_shape("int f(int a) {", True)).finalize("\n  return a;\n}\nint g;") == \
        "\n  return a;\n}"
    assert Post(continuation_shape("import os\n"), 50).finalize("import re\n\n\nx = 1") == "import re\n\n\nx = 1"
