"""The cell takes the blows: segfault, hang, fork bomb, huge allocation, network, garbage and forged answers.

These kernels would be refused at build time for their imports (fork, socket...); here they are compiled with a
plain gcc and loaded straight into the cell through the judge's process (sandbox.Worker → harness → cell), to
prove the runtime sandbox (bubblewrap + seccomp) holds on its own.
"""
import os
import socket
import subprocess
import time

import pytest

from ckls.verify import cell as cell_mod
from ckls.verify.jail import running_under
from ckls.verify.sandbox import Limits, Worker
from ckls.verify.spec import KernelSpec

SPEC = KernelSpec.from_dict({
    "name": "k", "sizes": [{"name": "n", "min": 1, "max": 64, "tile": 8}],
    "args": [{"name": "x", "dtype": "f32", "shape": ["n"]},
             {"name": "out", "dtype": "f32", "shape": ["n"], "role": "out"}],
})
CASE = {"sizes": {"n": 8}, "family": "normal", "layout": "contig", "threads": 1, "seed": 1}
HEADERS = ("#define _GNU_SOURCE\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n"
           "#include <stdio.h>\n#include <fcntl.h>\n#include <sys/socket.h>\n#include <netinet/in.h>\n"
           "#include <arpa/inet.h>\n#include <sys/syscall.h>\n")


def compile_raw(body: str, folder) -> str:
    """gcc without the judge's symbol checks: the cell alone must hold."""
    src = folder / "kernel.c"
    src.write_text(HEADERS + body)
    so = folder / "kernel.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-fopenmp", "-o", str(so), str(src)], check=True)
    return str(so)


@pytest.fixture
def make_worker(tmp_path):
    ref = tmp_path / "ref.py"
    ref.write_text("def copy(x):\n    return x\n\ndef zeros(x):\n    return x * 0\n")
    os.chmod(tmp_path, 0o755)
    workers = []

    def make(body: str, ref_name="copy", timeout=20.0, **lim):
        folder = tmp_path / f"w{len(workers)}"
        folder.mkdir()
        os.chmod(folder, 0o755)
        so = compile_raw(body, folder)
        exe, log = cell_mod.build_cell(SPEC, folder, False)
        assert exe, log
        w = Worker({"spec": SPEC.to_dict(), "so": so, "ref": f"{ref}::{ref_name}", "cell": exe, "timeout_s": timeout,
                    "settle_s": 0.001}, Limits(request_timeout_s=timeout + 10, **lim), isolate=False)
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.close()


def case(w, c=CASE):
    return w.request({"op": "case", "case": c})


def all_gone(folder, timeout: float = 60.0) -> bool:
    """Whether every cell jailed under folder has gone: killed cells take a moment to be reaped, so this waits
    for it (the timeout only ends a hang: a cell that survives the judge fails the test)."""
    deadline = time.monotonic() + timeout
    while running_under(folder):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_correct_kernel_runs(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) { memcpy(out, x, n * 4); }")
    assert case(w)["ok"]


def test_wrong_kernel_fails(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) { for (int64_t i = 0; i < n; i++) out[i] = -x[i]; }")
    assert case(w)["check"] == "wrong_result"


def test_segfault_is_a_crash_not_ours(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) { *(volatile int *)0 = 1; }")
    r = case(w)
    assert r["check"] == "crash" and "SEGV" in r["detail"]


def test_hang_times_out(make_worker, tmp_path):
    w = make_worker("void k(int64_t n, const float *x, float *out) { for (;;) __asm__ volatile(\"\"); }", timeout=2.0)
    t0 = time.monotonic()
    r = case(w)
    assert r["check"] == "timeout" and time.monotonic() - t0 < 15
    assert all_gone(tmp_path)


def test_fork_bomb_is_refused(make_worker, tmp_path):
    w = make_worker("void k(int64_t n, const float *x, float *out) { for (;;) fork(); }", timeout=3.0)
    r = case(w)
    assert r["check"] == "forbidden_syscall" and "clone" in r["detail"] or "fork" in r["detail"], r
    assert all_gone(tmp_path)


def test_huge_allocation_fails_the_candidate(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) {\n"
                    "  char *volatile p = malloc((size_t)100 << 30); memset(p, 1, (size_t)100 << 30);\n"
                    "  memcpy(out, x, n * 4); out[0] += p[(size_t)99 << 30]; free(p); }")
    assert not case(w)["ok"]


def test_garbage_on_answer_channel(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) {\n"
                    "  memcpy(out, x, n * 4); for (int fd = 3; fd < 64; fd++) write(fd, \"{oops\\n\", 6); }")
    r = case(w)
    assert not r["ok"] and r["check"] == "crash"


def test_no_network(make_worker):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    body = ("void k(int64_t n, const float *x, float *out) {\n"
            "  int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = {0};\n"
            "  a.sin_family = AF_INET; a.sin_port = htons(%d); a.sin_addr.s_addr = htonl(0x7f000001);\n"
            "  int ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0;\n"
            "  for (int64_t i = 0; i < n; i++) out[i] = ok ? 1.0f : 0.0f * x[i]; }" % port)
    try:
        r = case(make_worker(body, ref_name="zeros"))
        assert r["check"] == "forbidden_syscall" and "socket" in r["detail"], r
        srv.settimeout(0.5)
        with pytest.raises(OSError):
            srv.accept()
    finally:
        srv.close()


def test_forged_answer_is_refused(make_worker):
    # a well-formed answer written by the kernel (magic, no nonce) before the cell answers does not count
    w = make_worker("void k(int64_t n, const float *x, float *out) {\n"
                    "  uint64_t a[6] = {0x6c6c6563736c6b63ULL, 0, 0, 0, 0, 0};\n"
                    "  for (int fd = 3; fd < 16; fd++) write(fd, a, sizeof a); }")
    r = case(w)
    assert not r["ok"] and r["check"] == "crash"


def test_worker_restarts_the_cell_after_a_crash(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) {\n"
                    "  static int calls; if (++calls == 7) abort(); memcpy(out, x, n * 4); }")
    assert case(w)["ok"]  # 5 calls
    r = case(w)
    assert r["check"] == "crash" and "SIGABRT" in r["detail"]
    assert case(w)["ok"]  # a fresh cell, a fresh static


def test_no_pid_namespace_tell(make_worker):
    # the cell runs among the host's pids (a pid of 1 or 2 would tell a kernel it is being judged)
    w = make_worker("void k(int64_t n, const float *x, float *out) {\n"
                    "  long pid = syscall(SYS_getpid); for (int64_t i = 0; i < n; i++) out[i] = pid < 100 ? -1.0f : x[i]; }")
    assert case(w)["ok"]
