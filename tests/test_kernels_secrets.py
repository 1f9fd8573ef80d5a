"""Secrets never leave through the kernel command. Fresh fake secrets are planted where real ones live: the API
key and a service token in the environment, a private key in ~/.ssh (HOME points at a temporary folder), a
password in the workspace's .env. Scripted model turns then make the tools' output carry them through channels
that exist whatever the sandbox does: a kernel that #includes the key file or the .env (the compiler quotes
their lines), a kernel that prints the key built from numbers and aborts (the judge reports its output), the
key in the kernel's source and in the model's text. Every byte that goes out is searched: each request body
the Messages API received, the --transcript file, stdout and stderr of `ckls kernel`, the files it wrote.
A second case drives the loop directly with a key given in the config (not the environment) and the stream of
progress lines; a third checks what the language server returns and reports."""
from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from ckls.kernels.agent import AgentConfig, run_agent
from ckls.kernels.redact import Redactor, redactor
from ckls.kernels.task import draft_task
from kernels_fixtures import AXPY_OK, CORPUS, axpy_workspace  # noqa: F401  (fixture)
from messages_api_server import MessagesAPIServer, tool

ROOT = Path(__file__).resolve().parent.parent


def _token(n: int) -> str:
    """Random letters and digits (at least one of each case and a digit)."""
    return "Q7x" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
                           for _ in range(n))


@pytest.fixture
def planted(tmp_path, axpy_workspace):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    ssh_lines = [base64.b64encode(secrets.token_bytes(51)).decode() for _ in range(4)]
    key_file = home / ".ssh" / "id_ed25519"
    key_file.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(ssh_lines) +
                        "\n-----END OPENSSH PRIVATE KEY-----\n")
    ws = axpy_workspace
    s = {"api": "sk-ant-api03-" + _token(40), "service": _token(28), "dotenv": _token(20)}
    (ws / ".env").write_text(f"DB_PASSWORD={s['dotenv']}\nDEBUG=1\n")
    for i, line in enumerate(ssh_lines):
        s[f"ssh{i}"] = line
    return {"home": home, "ws": ws, "key_file": key_file, "secrets": s}


def _ints(text: str) -> str:
    return ", ".join(str(ord(c)) for c in text) + ", 0"


def _printing_kernel(s: dict) -> str:
    """Prints the API key and the token (built from numbers: neither is in the source), then aborts: the judge
    reports the output of a crash."""
    return (
        "#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
        f"static const int K[] = {{{_ints(s['api'])}}};\nstatic const int T[] = {{{_ints(s['service'])}}};\n"
        "static void leak(void) {\n    char buf[256];\n    int i;\n"
        "    for (i = 0; K[i]; i++) buf[i] = (char)K[i];\n    buf[i] = 0;\n    fprintf(stderr, \"%s\\n\", buf);\n"
        "    for (i = 0; T[i]; i++) buf[i] = (char)T[i];\n    buf[i] = 0;\n    fprintf(stderr, \"%s\\n\", buf);\n"
        "    abort();\n}\n"
        "void axpy(int64_t n, float a, const float *x, const float *y, float *out) {\n"
        "    leak();\n    for (int64_t i = 0; i < n; i++) out[i] = a * x[i] + y[i];\n}\n")


def _script(p: dict) -> list:
    s = p["secrets"]
    return [
        tool("compile", "Checking the build.", source=f'#include "{p["key_file"]}"\n' + AXPY_OK),
        tool("run_public_tests", source=f'#include "{p["ws"] / ".env"}"\n' + AXPY_OK),
        tool("run_public_tests", f"The key is {s['api']} and the token {s['service']}.\nNow the tests.",
             source=_printing_kernel(s)),
        tool("compile", source=f"/* {s['api']} {s['dotenv']} {s['ssh1']} */\n" + AXPY_OK),
        tool("submit_kernel", source=_printing_kernel(s), notes=f"uses {s['service']} and {s['dotenv']}"),
    ]


def _leaks(blob: str, s: dict) -> list[str]:
    return [name for name, v in s.items() if v in blob]


def test_cli_lets_no_secret_out(planted, tmp_path):
    p, s = planted, planted["secrets"]
    ws = p["ws"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(p["home"]), ANTHROPIC_API_KEY=s["api"],
               MY_SERVICE_TOKEN=s["service"], CKLS_KERNEL_CACHE=str(tmp_path / "cache"))
    with MessagesAPIServer(_script(p), api_key=s["api"]) as api:
        r = subprocess.run([sys.executable, "-m", "ckls", "kernel", "ops.py::axpy", "--base-url", api.url,
                            "--max-turns", "6", "--verify-budget", "quick", "--transcript", "t.json",
                            "--out", "kernel_out.c", "--format", "json"],
                           cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    assert api.errors == [] and len(api.requests) == 5, (api.errors, r.stderr[-6000:])
    bodies = [json.dumps(q["body"]) for q in api.requests]
    sent = "\n".join(bodies)
    # nothing unmasked anywhere
    written = {str(f.relative_to(ws)): f.read_text(errors="replace") for f in ws.rglob("*")
               if f.is_file() and f.name != ".env"}
    assert "t.json" in written and "kernel_out.c" in written
    outputs = {"request bodies": sent, "stdout": r.stdout, "stderr": r.stderr, **written}
    found = {where: _leaks(text, s) for where, text in outputs.items() if _leaks(text, s)}
    assert found == {}, found
    # the channels did carry the secrets to the tools' output (masked)
    assert "[redacted: ~/.ssh/id_ed25519]" in sent, bodies[1][-3000:]
    assert "[redacted: .env DB_PASSWORD]" in sent and "[redacted: ANTHROPIC_API_KEY]" in sent
    assert "[redacted: MY_SERVICE_TOKEN]" in sent
    # the run itself went as a run goes: the judge's report on stdout, progress on stderr
    assert r.returncode == 1, r.stderr[-3000:]
    rep = json.loads(r.stdout)
    assert rep["verdict"] == "FAIL" and rep["failure"]["check"] in ("crash", "harness_error", "sanitizer")
    assert "turn 1: compile -> ERRORS" in r.stderr
    # ordinary diagnostics are not masked
    assert "kernel.c" in sent and "error:" in sent


def test_agent_masks_a_configured_key_in_progress_transcript_and_result(planted, monkeypatch):
    p, s = planted, planted["secrets"]
    task = draft_task(str(p["ws"] / "ops.py"), name="axpy", spec_path=str(CORPUS / "axpy" / "spec.json")).task()
    monkeypatch.setenv("HOME", str(p["home"]))
    monkeypatch.setenv("MY_SERVICE_TOKEN", s["service"])
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    lines: list[str] = []
    with MessagesAPIServer(_script(p), api_key=s["api"]) as api:
        res = run_agent(task, "c", AgentConfig(base_url=api.url, api_key=s["api"], max_turns=6),
                        progress=lines.append)
    assert api.errors == [] and res.stop == "submitted", res.error
    shown = "\n".join(lines) + json.dumps(res.transcript) + json.dumps(res.to_dict()) + \
        "".join(json.dumps(q["body"]) for q in api.requests)
    assert _leaks(shown, s) == []
    assert any("[redacted: ANTHROPIC_API_KEY]" in m for m in lines)
    assert "[redacted: ANTHROPIC_API_KEY]" in json.dumps(res.transcript)
    assert "[redacted: MY_SERVICE_TOKEN]" in res.notes and "[redacted: .env DB_PASSWORD]" in res.notes


def test_redactor_masks_shapes_and_leaves_diagnostics_alone(tmp_path):
    aws, gh = "AKIA" + _token(13).upper()[:16], "ghp_" + _token(36)
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow" + _token(60) + "\n-----END RSA PRIVATE KEY-----"
    shadow = "root:$6$" + _token(8) + "$" + _token(40) + ":19000:0:99999:7:::"
    cookie = "c00kie-" + _token(10)
    r = redactor(env={"SESSION_COOKIE": cookie, "PATH": "/usr/bin:/bin", "PWD": str(tmp_path),
                      "SHORT_TOKEN": "abc"}, home=tmp_path / "nohome", api_key="key-from-config-1234")
    text = (f"env {cookie} {aws} {gh} {pem}\n{shadow}\nkey-from-config-1234\n"
            "sk-ant-api03-" + _token(30))
    out = r(text)
    assert cookie not in out and "[redacted: SESSION_COOKIE]" in out
    assert aws not in out and gh not in out and "MIIEow" not in out and "key-from-config-1234" not in out
    assert "root:[redacted: password hash]:19000" in out and "sk-ant-api03" not in out
    assert "[redacted: ANTHROPIC_API_KEY]" in out and "[redacted: private key]" in out
    diag = ("candidate3.c:5:13: error: 'b' undeclared (first use in this function); did you mean 'a'?\n"
            "    5 |     for (int64_t i = 0; i < n; i++) out[i] = b * x[i] + y[i];\n"
            "==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000010 at pc 0x7f3c2a1b2c3d\n"
            f"gcc -O3 -march=native -fopenmp -std=gnu11 -shared -fPIC -o {tmp_path}/libk.so _mm256_fmadd_ps "
            "__builtin_ia32_vfmaddps256 abc SHORT_TOKEN usr/bin:/bin")
    assert r(diag) == diag
    assert r.obj({"a": [text, 3, None]})["a"][0] == out
    assert Redactor()("plain") == "plain"


def test_compiler_quotes_of_an_included_file_are_masked_whatever_it_holds(tmp_path):
    from ckls.kernels.redact import foreign_source
    from ckls.kernels.task import draft_task as draft
    from ckls.kernels.tools import Workbench

    other = tmp_path / "elsewhere" / "notes.txt"
    other.parent.mkdir()
    value = _token(20)
    other.write_text(f"launch_code = {value};\nplain words here\n")
    task = draft(str(CORPUS / "axpy" / "original.py"), name="axpy", spec_path=str(CORPUS / "axpy" / "spec.json")).task()
    wb = Workbench(task, "c", [])
    out = wb.run("compile", {"source": f'#include "{other}"\n' + AXPY_OK}).text
    assert value not in out and "plain words" not in out
    # the compiler's jail does not even see the file; were it quoted, the quote would be masked
    assert "No such file" in out or f"[redacted: contents of {other}]" in out
    quoted = f"{other}:1:1: error: unknown type name 'launch_code'\n    1 | launch_code = {value};\n"
    assert value not in foreign_source(quoted)
    bad = wb.run("compile", {"source": AXPY_OK.replace("out[i] = a", "out[i] = b")}).text
    assert "kernel.c:5" in bad and "out[i] = b * x[i]" in bad and "redacted" not in bad
    assert foreign_source(bad) == bad
