"""The child process takes the blows: segfault, hang, fork bomb, huge allocation, network, garbage output.

These kernels would be refused at build time for their imports (fork, socket...); here they are loaded
straight into a Worker to prove the runtime sandbox holds on its own.
"""
import os
import socket
import time

import pytest

from ckls.verify import build as build_mod
from ckls.verify.sandbox import Crash, Limits, Worker, isolation
from ckls.verify.spec import KernelSpec

HERE = os.path.dirname(os.path.abspath(__file__))

SPEC = KernelSpec.from_dict({
    "name": "k", "sizes": [{"name": "n", "min": 1, "max": 64, "tile": 8}],
    "args": [{"name": "x", "dtype": "f32", "shape": ["n"]},
             {"name": "out", "dtype": "f32", "shape": ["n"], "role": "out"}],
})
CASE = {"sizes": {"n": 8}, "family": "normal", "layout": "contig", "threads": 1, "seed": 1}


@pytest.fixture
def make_worker(tmp_path):
    ref = tmp_path / "ref.py"
    ref.write_text("def copy(x):\n    return x\n\ndef zeros(x):\n    return x * 0\n")
    os.chmod(tmp_path, 0o755)
    workers = []

    def make(body: str, ref_name="copy", timeout=20.0, **lim):
        src = tmp_path / "k.c"
        src.write_text("#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n"
                       "#include <sys/socket.h>\n#include <netinet/in.h>\n#include <arpa/inet.h>\n" + body)
        b = build_mod.build_c(src, tmp_path / "build", "opt")
        assert b.so_path, b.log
        os.chmod(tmp_path / "build", 0o755)
        w = Worker({"spec": SPEC.to_dict(), "so": b.so_path, "ref": f"{ref}::{ref_name}"},
                   Limits(request_timeout_s=timeout, **lim))
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.close()


def test_correct_kernel_runs(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) { memcpy(out, x, n * 4); }")
    assert w.request({"op": "case", "case": CASE})["ok"]


def test_segfault_is_a_crash_not_ours(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) { *(volatile int *)0 = 1; }")
    with pytest.raises(Crash) as e:
        w.request({"op": "case", "case": CASE})
    assert e.value.reason == "signal" and "SEGV" in e.value.detail


def test_hang_times_out(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) { for (;;) __asm__ volatile(\"\"); }",
                    timeout=2.0)
    t0 = time.monotonic()
    with pytest.raises(Crash) as e:
        w.request({"op": "case", "case": CASE})
    assert e.value.reason == "timeout" and time.monotonic() - t0 < 10
    assert w.proc is None  # killed


@pytest.mark.skipif(isolation()["process_limit"].startswith("none"), reason="no way to cap processes here")
def test_fork_bomb_is_contained(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) { for (;;) fork(); }", timeout=3.0)
    with pytest.raises(Crash):
        w.request({"op": "case", "case": CASE})
    time.sleep(0.3)
    # nothing of it survives: no process still runs the harness's code
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"ckls.verify.harness" in f.read():
                    leftovers.append(pid)
        except OSError:
            pass
    assert not leftovers


def test_huge_allocation_fails_the_candidate(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) {\n"
                    "  char *volatile p = malloc((size_t)100 << 30); memset(p, 1, (size_t)100 << 30);\n"
                    "  memcpy(out, x, n * 4); out[0] += p[(size_t)99 << 30]; free(p); }")
    with pytest.raises(Crash):
        w.request({"op": "case", "case": CASE})


def test_garbage_on_answer_channel(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) {\n"
                    "  for (int fd = 3; fd < 64; fd++) write(fd, \"{oops\\n\", 6); memcpy(out, x, n * 4); }")
    with pytest.raises(Crash) as e:
        w.request({"op": "case", "case": CASE})
    assert e.value.reason == "protocol"


@pytest.mark.skipif(not isolation()["network_namespace"], reason="no network namespace on this OS")
def test_no_network(make_worker):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    # out = 0 when the connection fails (what the reference expects), 1 when it gets through
    body = ("void k(int64_t n, const float *x, float *out) {\n"
                    "  int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = {0};\n"
                    "  a.sin_family = AF_INET; a.sin_port = htons(%d); a.sin_addr.s_addr = htonl(0x7f000001);\n"
                    "  int ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0;\n"
                    "  for (int64_t i = 0; i < n; i++) out[i] = ok ? 1.0f : 0.0f * x[i]; }" % port)
    try:
        assert make_worker(body, ref_name="zeros").request({"op": "case", "case": CASE})["ok"]
        # control: with the network allowed the same kernel does get through (so the check can fail)
        open_net = make_worker(body, ref_name="zeros", network=True)
        assert open_net.request({"op": "case", "case": CASE})["check"] == "wrong_result"
    finally:
        srv.close()


def test_forged_answer_is_refused(make_worker):
    # a well-formed "ok" written by the kernel before the harness answers does not count
    w = make_worker("void k(int64_t n, const float *x, float *out) {\n"
                    "  for (int fd = 3; fd < 64; fd++) write(fd, \"{\\\"ok\\\": true}\\n\", 13); }")
    with pytest.raises(Crash) as e:
        w.request({"op": "case", "case": CASE})
    assert e.value.reason == "protocol"


def test_worker_restarts_after_crash(make_worker):
    w = make_worker("void k(int64_t n, const float *x, float *out) {\n"
                    "  static int calls; if (++calls == 5) abort(); memcpy(out, x, n * 4); }")
    assert w.request({"op": "case", "case": CASE})["ok"]  # 4 calls
    with pytest.raises(Crash):
        w.request({"op": "case", "case": CASE})
    assert w.request({"op": "case", "case": CASE})["ok"]  # fresh process, fresh static
    assert w.starts == 2
