"""Kernels written to beat the judge: forge a verdict, rewrite the user's original, read secrets (environ, ~/.ssh,
a workspace file), write outside, exec, fork, connect, hide imports behind weak symbols or raw system calls, leave
the FPU changed, mutate-and-restore a read-only input.

Each runs twice: through verify() as a user would (the build's symbol, instruction and load-time checks are the
first line) and straight in the cell with those checks skipped (the jail and the seccomp filter must hold alone).
Either way it must FAIL or ERROR, the user's files must stay byte-identical, no process and no file may be left,
and fake secrets planted in the environment, ~/.ssh and the workspace must appear nowhere in what the judge says.
"""
import hashlib
import os
import secrets
import subprocess
import tempfile
from pathlib import Path

import pytest

from ckls.verify import build as build_mod
from ckls.verify import cell as cell_mod
from ckls.verify.jail import running_under
from ckls.verify.run import TSAN_OPTIONS, verify
from ckls.verify.sandbox import Limits, Worker
from ckls.verify.spec import KernelSpec

SPEC = KernelSpec.from_dict({
    "name": "add", "sizes": [{"name": "n", "min": 0, "max": 4096, "tile": 8, "typical": 1024}],
    "args": [{"name": "a", "dtype": "f32", "shape": ["n"]}, {"name": "b", "dtype": "f32", "shape": ["n"]},
             {"name": "out", "dtype": "f32", "shape": ["n"], "role": "out"}],
    "families": ["normal", "special"]})
ORIGINAL = "def add(a, b):\n    return a + b\n"
HEAD = ("#define _GNU_SOURCE\n#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
        "#include <unistd.h>\n#include <fcntl.h>\n#include <sys/socket.h>\n#include <sys/syscall.h>\n"
        "#include <netinet/in.h>\n#include <arpa/inet.h>\n#include <signal.h>\n#include <xmmintrin.h>\n")
ADD = "for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];"
SIG = "void add(int64_t n, const float *a, const float *b, float *out)"


def _leak(path_expr: str) -> str:
    """A kernel that reads a file and prints it, then adds correctly (so only the attempt can fail it)."""
    return (f"{SIG} {{ char buf[4096] = {{0}}; int fd = open({path_expr}, O_RDONLY);\n"
            "  if (fd >= 0) { ssize_t r = read(fd, buf, sizeof buf - 1); if (r > 0) fprintf(stderr, \"%s\", buf); "
            "close(fd); }\n  " + ADD + " }\n")


HOSTILE = {
    # rewrites the user's original so that the wrong kernel agrees with it
    "rewrite_original": ("__attribute__((constructor)) static void c(void) { FILE *f = fopen(ORIGINAL_PATH, \"w\");"
                         " if (f) { fputs(\"def add(a, b):\\n    return a - b\\n\", f); fclose(f); } }\n"
                         f"{SIG} {{ for (int64_t i = 0; i < n; i++) out[i] = a[i] - b[i]; }}\n"),
    "read_init_environ": _leak("\"/proc/1/environ\""),
    "read_own_environ": _leak("\"/proc/self/environ\""),
    "read_ssh_key": _leak("SSH_KEY_PATH"),
    "read_workspace_secret": _leak("WORKSPACE_SECRET_PATH"),
    "read_shadow": _leak("\"/etc/shadow\""),
    "write_tmp": (f"{SIG} {{ FILE *f = fopen(\"/tmp/\" MARKER, \"w\"); if (f) {{ fputs(\"x\", f); fclose(f); }}\n"
                  f"  {ADD} }}\n"),
    "write_workspace": (f"{SIG} {{ int fd = open(WORKSPACE_DIR \"/\" MARKER, O_WRONLY | O_CREAT, 0644);"
                        f" if (fd >= 0) close(fd);\n  {ADD} }}\n"),
    "exec_shell": f"{SIG} {{ if (fork() == 0) {{ execl(\"/bin/sh\", \"sh\", \"-c\", \"touch /tmp/\" MARKER, (char *)0); _exit(0); }}\n  {ADD} }}\n",
    "weak_system": ("__attribute__((weak)) int system(const char *);\n"
                    f"{SIG} {{ if (system) system(\"touch /tmp/\" MARKER); {ADD} }}\n"),
    "raw_syscall_open": (f"{SIG} {{ long fd; const char *p = SSH_KEY_PATH;\n"
                         "  __asm__ volatile(\"syscall\" : \"=a\"(fd) : \"a\"(2), \"D\"(p), \"S\"(0) : \"rcx\", \"r11\", \"memory\");\n"
                         f"  {ADD} }}\n"),
    "socket_connect": (f"{SIG} {{ int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in x = {{0}};\n"
                       "  x.sin_family = AF_INET; x.sin_port = htons(9); x.sin_addr.s_addr = htonl(0x7f000001);\n"
                       f"  if (s >= 0) connect(s, (struct sockaddr *)&x, sizeof x); {ADD} }}\n"),
    "forge_answer": (f"{SIG} {{ uint64_t ans[6] = {{0x6c6c6563736c6b63ULL, 0, 0, 0, 0, 0}};\n"
                     "  for (int fd = 3; fd < 32; fd++) write(fd, ans, sizeof ans); }\n"),
    "kill_judge": f"{SIG} {{ kill(getppid(), 9); kill(-1, 9); {ADD} }}\n",
    "ftz_left_on": f"{SIG} {{ _mm_setcsr(_mm_getcsr() | 0x8040); {ADD} }}\n",
    "mutate_restore_input": (f"{SIG} {{ volatile float *w = (volatile float *)a; for (int64_t i = 0; i < n; i++) {{ float t = w[i];"
                             " w[i] = 0; w[i] = t; }\n" f"  {ADD} }}\n"),
}


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A user's workspace with the original and a secret, a home with an ssh key, a key in the environment,
    and a private temp folder for the judge, so whatever is left behind is seen."""
    key = "sk-ant-fake-" + secrets.token_hex(16)
    ssh_secret, ws_secret = "ssh-" + secrets.token_hex(16), "dbpass-" + secrets.token_hex(16)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{ssh_secret}\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "add.py").write_text(ORIGINAL)
    (ws / ".env").write_text(f"DB_PASSWORD={ws_secret}\n")
    judge_tmp = tmp_path / "judge-tmp"
    judge_tmp.mkdir()
    for d in (tmp_path, home, ws, judge_tmp):
        os.chmod(d, 0o755)  # the worst case: everything readable to anyone (the jail must hide it anyway)
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(tempfile, "tempdir", str(judge_tmp))
    return {"key": key, "ssh": ssh_secret, "ws_secret": ws_secret, "home": home, "ws": ws, "tmp": judge_tmp,
            "marker": "ckls-pwned-" + secrets.token_hex(4)}


# Not run in the ThreadSanitizer cell, and why.
TSAN_CELL_SKIP: dict[str, str] = {}


def _source(world, body: str) -> str:
    defs = {"ORIGINAL_PATH": str(world["ws"] / "add.py"), "SSH_KEY_PATH": str(world["home"] / ".ssh/id_ed25519"),
            "WORKSPACE_SECRET_PATH": str(world["ws"] / ".env"), "WORKSPACE_DIR": str(world["ws"]),
            "MARKER": world["marker"]}
    return HEAD + "".join(f'#define {k} "{v}"\n' for k, v in defs.items()) + body


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _check_world(world, before: dict, said: str):
    assert _snapshot(world["ws"]) == before, "the user's files changed"
    assert not running_under(world["tmp"]), "a cell is still running"
    assert not list(world["tmp"].iterdir()), f"left behind: {list(world['tmp'].iterdir())}"
    assert not os.path.exists("/tmp/" + world["marker"])
    for name in ("key", "ssh", "ws_secret"):
        assert world[name] not in said, f"{name} leaked"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_kernel_through_verify(world, name):
    kernel = world["ws"] / "kernel.c"
    kernel.write_text(_source(world, HOSTILE[name]))
    before = _snapshot(world["ws"])
    rep = verify(f"{world['ws'] / 'add.py'}::add", str(kernel), SPEC, budget="quick", seed=1)
    said = rep.to_text() + rep.to_json()
    assert rep.verdict in ("FAIL", "ERROR"), said
    _check_world(world, before, said)


@pytest.mark.parametrize("kind", ["plain", "tsan"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_kernel_in_the_cell_alone(world, name, kind, tmp_path):
    """The build's checks skipped: compiled by plain gcc (tsan: clang -fsanitize=thread, for the ThreadSanitizer
    cell and its extra allowances: libomp started before the filters, /tmp and /dev/shm writable), loaded
    straight into the cell."""
    if kind == "tsan" and (build_mod.tsan_toolchain() or name in TSAN_CELL_SKIP):
        pytest.skip(build_mod.tsan_toolchain() or TSAN_CELL_SKIP[name])
    build = world["tmp"] / "build"
    build.mkdir()
    os.chmod(build, 0o755)
    src = build / "kernel.c"
    src.write_text(_source(world, HOSTILE[name]))
    so = build / "kernel.so"
    cc = ["gcc", "-O1"] if kind == "plain" else ["clang", "-O1", "-g", "-fsanitize=thread"]
    subprocess.run([*cc, "-shared", "-fPIC", "-fopenmp", "-o", str(so), str(src)], check=True)
    exe, log = cell_mod.build_cell(SPEC, build, False if kind == "plain" else "tsan")
    assert exe, log
    before = _snapshot(world["ws"])
    init = {"spec": SPEC.to_dict(), "so": str(so), "ref": f"{world['ws'] / 'add.py'}::add", "cell": exe,
            "timeout_s": 10.0}
    if kind == "tsan":
        init.update(sanitizer="tsan", guard_pad=0, settle_s=0,
                    cell_env={"TSAN_OPTIONS": TSAN_OPTIONS, "OMP_TOOL_LIBRARIES": build_mod.archer_library()})
    said, results = "", []
    with Worker(init, Limits(request_timeout_s=20), isolate=False, sanitizer=kind != "plain") as w:
        for layout in ("contig", "readonly"):
            r = w.request({"op": "case", "case": {"sizes": {"n": 37}, "family": "normal", "layout": layout,
                                                  "threads": 1, "seed": 5}})
            results.append(r)
            said += str(r)
        said += w.log_tail(100000)
        said += Path(w.tmp, "cell.log").read_text(errors="replace") if Path(w.tmp, "cell.log").exists() else ""
    for p in build.iterdir():
        p.unlink()
    build.rmdir()
    _check_world(world, before, said)
    # In the sanitizer cells an open is refused (EACCES: the runtime's own report opens /proc/self/maps), not
    # killed, and buffers are copies: a kernel whose attempt was refused may then compute the right answer.
    assert kind == "tsan" or any(not r.get("ok") for r in results), (name, results)
