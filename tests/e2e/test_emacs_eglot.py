"""A client we did not write: Emacs's eglot, in `emacs --batch`, drives `ckls serve` over stdio
(tests/e2e/eglot_init.el), started by the docs/editors.md eglot snippet as written (python-mode-hook ->
eglot-ensure; `ckls` on PATH is this checkout's): didOpen of a copy of a standard-library module, the shipped
default model loading, a line in the middle of a function replaced by a partial one (didChange),
textDocument/completion through eglot's completion table, `completion-at-point` inserting the sole candidate,
eglot-shutdown. The candidate must be the model's suggestion for that text (computed here), Emacs must exit 0, no
server process may be left, and the server's stderr (eglot's `*EGLOT ... stderr*` buffer, printed) must hold no
INFO line: the log goes to the editor as window/logMessage, stderr is for errors.

Emacs tried: `emacs` on PATH (CI installs Debian's emacs-nox 28.2 with elpa-eglot 1.9; eglot is built into Emacs
29+), or $CKLS_EMACS. Without it, or without eglot, it skips, or fails under CKLS_REQUIRE_EMACS=1 (CI)."""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from server_fixtures import expected_completion

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
INIT = HERE / "eglot_init.el"
DOCS = REPO / "docs" / "editors.md"
REQUIRE = os.environ.get("CKLS_REQUIRE_EMACS") == "1"
MARK = "CKLS-EGLOT-RESULT "  # eglot_init.el's line on stdout
# the workspace's ckls.toml: a latency cap no machine reaches, so the answer is the full prompt's, as computed here
OPTIONS = {"memoryEnabled": False, "latencyMs": 20000, "maxTokens": 24, "debounceMs": 0, "debounceMaxMs": 0, "extraTokens": 0}
SOURCE = Path(textwrap.__file__)  # a real file: the standard library's textwrap.py, copied


def emacs() -> str:
    """The Emacs to run, or a skip (a failure under CKLS_REQUIRE_EMACS=1) when there is none or it lacks eglot."""
    name = os.environ.get("CKLS_EMACS") or "emacs"
    exe = shutil.which(name)
    msg = None
    if not exe:
        msg = f"no {name} on PATH (Debian: apt-get install emacs-nox elpa-eglot; .ci/run installs them)"
    else:
        probe = ("(progn (unless (fboundp 'eglot-ensure) (package-activate-all))"
                 " (princ (if (require 'eglot nil t) (locate-library \"eglot\") \"NONE\")))")
        p = subprocess.run([exe, "--batch", "--eval", probe], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0 or p.stdout.strip() in ("", "NONE"):
            msg = f"{exe} has no eglot (Debian: apt-get install elpa-eglot; built into Emacs 29+): {p.stderr[-500:]}"
    if msg:
        if REQUIRE:
            pytest.fail("CKLS_REQUIRE_EMACS=1 but " + msg)
        pytest.skip(msg)
    return exe


def snippet() -> str:
    """docs/editors.md's eglot snippet, by its `<!-- test_emacs_eglot -->` mark."""
    found = re.findall(r"<!-- test_emacs_eglot -->\s*```elisp\n(.*?)```", DOCS.read_text(), re.S)
    assert len(found) == 1, "docs/editors.md should mark exactly one eglot snippet"
    return found[0]


def spots(source: str):
    """(line, partial) places in the middle of a function: a one-line `name = call_or_name...` statement that is
    neither the body's first nor last, cut three characters into its right-hand side (a word being typed)."""
    lines = source.splitlines()
    for fn in ast.parse(source).body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        docstring = isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant)
        for st in (fn.body[1:] if docstring else fn.body)[1:-1]:
            if (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)
                    and st.lineno == st.end_lineno and isinstance(st.value, (ast.Call, ast.Name, ast.Attribute))):
                text, col = lines[st.lineno - 1], st.value.col_offset
                if text.isascii() and re.match(r"[A-Za-z_]\w\w", text[col:]):
                    yield st.lineno, text[: col + 3]


def workspace(tmp_path: Path, stderr_line: str = "") -> tuple[Path, Path, Path, Path]:
    """A project folder with a copy of SOURCE and OPTIONS in its ckls.toml, the docs' snippet, and a `ckls` for PATH
    (this checkout's, through this Python, as the process itself; it writes its pid, and `stderr_line` on stderr
    first): (the folder, the copy, the PATH folder, the pid file)."""
    root = tmp_path / "work"
    root.mkdir()
    src = root / "textwrap_copy.py"
    shutil.copyfile(SOURCE, src)
    (root / "ckls.toml").write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in OPTIONS.items()))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "server-pid"
    shim = bin_dir / "ckls"
    shim.write_text(f"""#!/bin/sh
echo $$ > {shlex.quote(str(pid_file))}
{f'echo {shlex.quote(stderr_line)} >&2' if stderr_line else ''}
PYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}} exec {shlex.quote(sys.executable)} -m ckls "$@"
""")
    shim.chmod(0o755)
    (tmp_path / "snippet.el").write_text(snippet())
    return root, src, bin_dir, pid_file


def run_emacs(exe: str, tmp_path: Path, bin_dir: Path, root: Path, cfg: dict) -> tuple[dict, str]:
    """eglot_init.el in `exe`, with no user configuration: (its result, Emacs's output for failure messages)."""
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    home = tmp_path / "home"  # no user init, no ~/.emacs.d
    home.mkdir()
    env = dict(os.environ, CKLS_EGLOT_CONFIG=str(tmp_path / "cfg.json"), HOME=str(home), LANG="C.UTF-8",
               PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for d in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[d] = str(tmp_path / d.lower())
    try:
        p = subprocess.run([exe, "--batch", "-l", str(INIT)], cwd=root, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"emacs did not exit within {e.timeout}s\n{e.stdout}\n{e.stderr}")
    found = [ln[len(MARK):] for ln in p.stdout.splitlines() if ln.startswith(MARK)]
    where = f"emacs exit {p.returncode}\nstdout:\n{p.stdout[-6000:]}\nstderr:\n{p.stderr[-3000:]}"
    assert found, f"emacs printed no result\n{where}"
    out = json.loads(found[-1])
    out["returncode"] = p.returncode
    return out, where


def server_gone(pid_file: Path, seconds: float = 15) -> bool:
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def info_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "INFO" in ln]


def test_the_docs_mark_the_eglot_snippet():
    s = snippet()
    assert "eglot-server-programs" in s and '"ckls" "serve"' in s and "#'eglot-ensure" in s


@pytest.mark.slow
def test_the_stderr_check_sees_an_info_line(tmp_path):
    """The control for the INFO check below: a line the server writes on stderr is in what the driver prints."""
    exe = emacs()
    root, src, bin_dir, pid_file = workspace(tmp_path, stderr_line="INFO ckls: a line on stderr")
    line, partial = next(spots(src.read_text()))
    out, where = run_emacs(exe, tmp_path, bin_dir, root, {"snippet": str(tmp_path / "snippet.el"), "file": str(src),
                                                          "line": line, "partial": partial})
    assert out["error"] is None, f"{out['error']}\n{where}"
    assert any("a line on stderr" in ln for ln in info_lines(out["stderr"])), where
    assert server_gone(pid_file), where


@pytest.mark.slow
def test_eglot_gets_the_servers_completion(tmp_path):
    from ckls.config import Settings

    exe = emacs()
    model = str(REPO / "ckls" / "models" / "default.gguf")  # the default of the server the shim runs (this checkout)
    assert os.path.exists(model), "ckls has no shipped default model"
    root, src, bin_dir, pid_file = workspace(tmp_path)
    text = src.read_text()
    uri = src.as_uri()
    settings = Settings().merged(OPTIONS)[0]
    # the first place in the file where the shipped model suggests something (it may say nothing at a place)
    want = ""
    for line, partial in list(spots(text))[:5]:
        lines = text.split("\n")
        lines[line - 1] = partial
        after = "\n".join(lines)
        want = expected_completion(model, uri, after, "python", line - 1, len(partial), settings)
        if want:
            break
    assert want, f"the shipped model suggests nothing at the first five places in {SOURCE}"
    word = re.search(r"[A-Za-z0-9_]*$", partial).group(0)

    out, where = run_emacs(exe, tmp_path, bin_dir, root, {"snippet": str(tmp_path / "snippet.el"), "file": str(src),
                                                          "line": line, "partial": partial})
    print(f"eglot {out.get('eglot')} in Emacs {out.get('emacs')}; {out.get('model')}; at line {line} "
          f"{partial!r} -> {out.get('candidates')}\nserver stderr ({out.get('stderr_buffer')}):\n{out.get('stderr')}")
    assert out["error"] is None, f"{out['error']}\n{where}"
    assert out["returncode"] == 0, where
    assert out["mode"] == "python-mode" and out["capf"] is True, where
    assert out["command"] == ["ckls", "serve"], where  # started by the snippet's eglot-server-programs entry
    assert out["model"] == f"loaded {model}", where  # no modelPath anywhere: the server's default
    assert out["position"] == [line - 1, len(partial)], where

    # eglot's completion table: the one item ckls gives, its text the model's
    items = out["items"]
    assert len(items) == 1, where
    item = items[0]
    assert item["detail"] == "ckls", item
    assert item["textEdit"]["newText"] == word + want, (item, want)
    assert out["candidates"] == [(word + want).split("\n", 1)[0].strip()], out["candidates"]
    # completion-at-point put the whole suggestion in the buffer, in place of the word being typed
    assert out["after"] == partial + want, (out["after"], want)

    assert server_gone(pid_file), f"the server (pid {pid_file.read_text().strip()}) outlived eglot-shutdown and Emacs"
    assert not info_lines(out["stderr"]), f"INFO on the server's stderr:\n{out['stderr']}"
