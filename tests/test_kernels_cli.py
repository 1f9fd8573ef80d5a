"""`ckls kernel path.py::func` as a user runs it: a subprocess, the local Messages API server, progress on
stderr, the judge's report on stdout, exit status by verdict, --apply writing the project files."""
import json
import os
import subprocess
import sys
from pathlib import Path

from kernels_fixtures import AXPY_OK, axpy_workspace  # noqa: F401  (fixture)
from messages_api_server import MessagesAPIServer, tool

ROOT = Path(__file__).resolve().parent.parent


def run_cli(args, cwd, key, stdin=""):
    env = dict(os.environ, PYTHONPATH=str(ROOT), ANTHROPIC_API_KEY=key, CKLS_KERNEL_CACHE=str(Path(cwd) / ".cache"))
    return subprocess.run([sys.executable, "-m", "ckls", "kernel", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_cli_generates_verifies_and_applies(axpy_workspace):
    ws = axpy_workspace
    with MessagesAPIServer([tool("run_public_tests", source=AXPY_OK), tool("submit_kernel", source=AXPY_OK)]) as api:
        r = run_cli(["ops.py::axpy", "--lang", "c", "--base-url", api.url, "--max-turns", "3",
                     "--budget-tokens", "100000", "--model", "claude-haiku-4-5", "--verify-budget", "quick",
                     "--apply", "--transcript", "t.json", "--out", "axpy_candidate.c"], ws, api.api_key)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "axpy: PASS" in r.stdout and "[ckls]" not in r.stdout
    err = r.stderr
    # dtype and the scalar `a` come from the call in test_ops.py: nothing to ask
    assert "(default; pass --answer" not in err
    assert "void axpy(int64_t n, float a, const float *x, const float *y, float *out)" in err
    assert "turn 1: run_public_tests -> PASS" in err and "~$" in err and "applied:" in err
    assert all(r["body"]["model"] == "claude-haiku-4-5" for r in api.requests)
    assert (ws / "axpy_candidate.c").read_text() == AXPY_OK
    assert (ws / "ops_axpy_ckls.c").exists() and "@_ckls_kernel_axpy" in (ws / "ops.py").read_text()
    assert json.loads((ws / "t.json").read_text())[0]["role"] == "user"


def test_cli_fail_verdict_exit_status_and_no_apply(axpy_workspace):
    ws = axpy_workspace
    bad = AXPY_OK.replace("i < n;", "i + 1 < n;")
    with MessagesAPIServer([tool("submit_kernel", source=bad)]) as api:
        r = run_cli(["ops.py::axpy", "--base-url", api.url, "--answer", "dtype=f32", "--answer", "kind:a=scalar",
                     "--verify-budget", "quick", "--apply", "-q"], ws, api.api_key)
    assert r.returncode == 1, r.stderr
    assert "axpy: FAIL" in r.stdout and "wrong_result" in r.stdout and "reproduce: ckls verify" in r.stdout
    assert "not PASS: nothing applied" in r.stderr and not (ws / "ops_axpy_ckls.c").exists()
    assert "float a" in api.requests[0]["body"]["system"][0]["text"]


def test_cli_errors(axpy_workspace):
    ws = axpy_workspace
    r = run_cli(["ops.py::nothing", "--yes"], ws, "k")
    assert r.returncode == 3 and "no Python function named 'nothing'" in r.stderr
    (ws / "test_ops.py").unlink()  # no call sites: dtype and `a` are open questions
    with MessagesAPIServer([{"status": 401, "error_type": "authentication_error"}]) as api:
        r = run_cli(["ops.py::axpy", "--base-url", api.url], ws, "sk-wrong-key-123")
    assert r.returncode == 3 and "authentication failed (401)" in r.stderr
    # without a terminal the defaults are taken, and said so
    assert "-> f32 (default; pass --answer dtype=...)" in r.stderr and "--answer kind:a=..." in r.stderr
    assert "sk-wrong-key-123" not in r.stderr + r.stdout


def test_cli_asks_on_a_terminal(axpy_workspace):
    """On a terminal the open questions are prompted for; the answers shape the contract the model gets."""
    import pty
    ws = axpy_workspace
    (ws / "test_ops.py").unlink()
    master, slave = pty.openpty()
    os.write(master, b"f64\n\n")  # dtype f64; `a`: Enter takes the default (scalar)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with MessagesAPIServer([{"content": [{"type": "text", "text": "No."}], "stop_reason": "refusal"}]) as api:
        env["ANTHROPIC_API_KEY"] = api.api_key
        r = subprocess.run([sys.executable, "-m", "ckls", "kernel", "ops.py::axpy", "--base-url", api.url], cwd=ws,
                           env=env, stdin=slave, capture_output=True, text=True, timeout=300)
    os.close(master)
    os.close(slave)
    assert r.returncode == 3 and "refusal" in r.stderr
    assert "Element type" in r.stderr and "[f32/f64]" in r.stderr and "[scalar/array/size]" in r.stderr
    assert "double a, const double *x" in api.requests[0]["body"]["system"][0]["text"]
