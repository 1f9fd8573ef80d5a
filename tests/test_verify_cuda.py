"""The CUDA side of the judge: parsing compute-sanitizer's reports, the sanitizer plan, the launcher contract,
device buffer layouts, the GPU speed-of-light flags; the CUDA cell (it builds, its jail has the GPU's device
nodes, its three seccomp stages allow and refuse what they say), and the whole judge path through the cell on
a stand-in driver (tests/fake_libcuda.c), hostile candidates included, on any machine; and, where a GPU is
present, that launch failures, illegal addresses, hangs and hostile CUDA kernels fail the candidate without
hanging or reaching the judge."""
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from ckls.verify import build as build_mod
from ckls.verify import cudacell, jail, seccomp
from ckls.verify.bench import gpu_hardware_flags
from ckls.verify.cudadrv import _SCRIBBLE_PTX
from ckls.verify.fuzz import cuda_sanitizer_plan
from ckls.verify.run import Budget, verify
from ckls.verify.sandbox import Limits, Worker
from ckls.verify.spec import KernelSpec
from ckls.verify.values import Buffer
from kernels_corpus.corpus import ROOT

GPU = build_mod.gpu_present()
AXPY = ROOT / "axpy_cuda"

MEMCHECK_LOG = """\
========= COMPUTE-SANITIZER
some harness output
========= Invalid __global__ read of size 8 bytes
=========     at axpy_pairs(long, float, const float *, const float *, float *)+0x1f0 in bug_overread.cu:10
=========     by thread (0,0,0) in block (0,0,0)
=========     Access to 0x7f3c38800000 is out of bounds
=========
========= Invalid __global__ read of size 8 bytes
=========     at axpy_pairs(long, float, const float *, const float *, float *)+0x1f0 in bug_overread.cu:10
=========
========= ERROR SUMMARY: 2 errors
"""
RACECHECK_LOG = """\
========= COMPUTE-SANITIZER
========= Error: Race reported between Read access at softmax_rows(long, const float *, float *)+0xb20 in x.cu:32
=========     and Write access at softmax_rows(long, const float *, float *)+0x13e0 in x.cu:37 [52 hazards]
=========
========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)
"""
CLEAN_LOG = "========= COMPUTE-SANITIZER\nprogram output\n========= ERROR SUMMARY: 0 errors\n"


def test_sanitizer_finding_is_the_first_error_block():
    f = build_mod.sanitizer_finding(MEMCHECK_LOG)
    assert f.splitlines()[0] == "Invalid __global__ read of size 8 bytes"
    assert "bug_overread.cu:10" in f and "out of bounds" in f
    assert f.count("Invalid") == 1  # the first block only
    r = build_mod.sanitizer_finding(RACECHECK_LOG)
    assert r.startswith("Error: Race reported between Read access") and "52 hazards" in r
    assert build_mod.sanitizer_finding(CLEAN_LOG) == ""
    assert build_mod.sanitizer_finding("========= COMPUTE-SANITIZER\n") == ""  # still running, nothing found
    assert build_mod.sanitizer_finding("") == ""


def test_cuda_sanitizer_plan_is_small_and_has_tails():
    spec = KernelSpec.load(AXPY / "spec.json")
    for seed in (1, 2, 3):
        cases = cuda_sanitizer_plan(spec, seed)
        assert 3 <= len(cases) <= 6
        ns = [c["sizes"]["n"] for c in cases]
        assert 257 in ns  # tile + 1: one thread block and a tail
        assert any(n % 256 not in (0, 1) for n in ns)
        assert any(c["layout"] == "offset" for c in cases)
        assert all(0 <= n <= 100000 for n in ns)


def test_cuda_contract_in_spec_and_description():
    spec = KernelSpec.load(AXPY / "spec.json")
    d = spec.describe()
    assert d.startswith('extern "C" void axpy(int64_t n, float a, const float *x, const float *y, float *out);')
    assert "device pointers" in d and "stream 0" in d
    import ckls.verify.spec as spec_mod
    assert "DEVICE pointers" in spec_mod.__doc__ and "legacy default stream" in spec_mod.__doc__


@pytest.mark.parametrize("layout,pad", [("contig", 16), ("offset", 16), ("contig", 0), ("offset", 0)])
def test_device_buffer_alignment_is_counted_from_the_allocation(layout, pad):
    b = Buffer((37,), np.float32, layout, pad, False, device=True)
    byte_off = b.offset * 4
    assert byte_off % 64 == (4 if layout == "offset" else 0)
    if pad == 0:  # the sanitizer layout: the array ends where the allocation ends
        assert b.base.nbytes == byte_off + 37 * 4
    b.poison()
    assert b.guard_intact()


def test_gpu_speed_of_light_flags():
    dev = {"name": "H100", "peak_bytes_per_s": 3.35e12, "sms": 132, "clock_hz": 1.98e9}
    fast = {"median_s": 1e-6, "ci_lo_s": 1e-6, "ci_hi_s": 1e-6, "runs": 10}
    ok = {"median_s": 1e-4, "ci_lo_s": 1e-4, "ci_hi_s": 1e-4, "runs": 10}
    assert gpu_hardware_flags(ok, 12e6, 2e6, "f32", dev) == []
    flags = gpu_hardware_flags(fast, 12e6, 2e6, "f32", dev)
    assert len(flags) == 1 and "GB/s" in flags[0]
    assert any("TFLOP/s" in f for f in gpu_hardware_flags(fast, 1e3, 1e13, "f32", dev))


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas (CUDA toolkit) not installed")
def test_scribble_and_hold_ptx_assemble(tmp_path):
    src = tmp_path / "judge.ptx"
    src.write_bytes(_SCRIBBLE_PTX.rstrip(b"\x00"))
    p = subprocess.run(["ptxas", "-arch=sm_90", str(src), "-o", str(tmp_path / "judge.cubin")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


# ---- on a GPU only ---------------------------------------------------------------------------------------
AXPY_HEAD = """#include <stdint.h>
#include <cuda_runtime.h>
__global__ static void k(int64_t n, float a, const float *x, const float *y, float *out) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    %s
}
extern "C" void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    if (n <= 0) return;
    %s
}
"""
QUICK = Budget(hypothesis_examples=0, sanitizer=False, bench_s=0.0, shrink_tries=0)


def _judge(tmp_path, body, launch, timeout=30.0):
    src = tmp_path / "axpy.cu"
    src.write_text(AXPY_HEAD % (body, launch))
    spec = KernelSpec.load(AXPY / "spec.json")
    return verify(str(AXPY / "original.py") + "::axpy", str(src), spec, spec_path=str(AXPY / "spec.json"),
                  budget=QUICK, limits=Limits(request_timeout_s=timeout))


needs_gpu = pytest.mark.skipif(not GPU or shutil.which("nvcc") is None, reason="needs a CUDA GPU and nvcc")


@needs_gpu
def test_gpu_launch_failure_fails_the_candidate(tmp_path):
    # One block of n threads: an invalid launch beyond 1024, nothing runs, the poison stays.
    rep = _judge(tmp_path, "if (i < n) out[i] = a * x[i] + y[i];", "k<<<1, (unsigned)n>>>(n, a, x, y, out);")
    assert rep.verdict == "FAIL" and rep.failure.check == "wrong_result", rep.to_text()
    assert rep.failure.case["sizes"]["n"] > 1024


@needs_gpu
def test_gpu_illegal_address_fails_and_the_judge_recovers(tmp_path):
    rep = _judge(tmp_path, "if (i < n) out[i + (1LL << 40)] = a * x[i] + y[i];",
                 "k<<<(unsigned)((n + 255) / 256), 256>>>(n, a, x, y, out);")
    assert rep.verdict == "FAIL" and rep.failure.check == "cuda_error", rep.to_text()
    assert "ILLEGAL_ADDRESS" in rep.failure.detail or "illegal" in rep.failure.detail.lower()
    ok = _judge(tmp_path, "if (i < n) out[i] = a * x[i] + y[i];",
                "k<<<(unsigned)((n + 255) / 256), 256>>>(n, a, x, y, out);")
    assert ok.verdict == "PASS", ok.to_text()


@needs_gpu
def test_gpu_hang_is_a_timeout_not_a_hung_judge(tmp_path):
    rep = _judge(tmp_path, "if (i < n) { for (;;) __nanosleep(1000); }",
                 "k<<<(unsigned)((n + 255) / 256), 256>>>(n, a, x, y, out);", timeout=5.0)
    assert rep.verdict == "FAIL" and rep.failure.check == "timeout", rep.to_text()
    assert rep.seconds < 60


def test_corpus_specs_say_cuda():
    for d in ("axpy_cuda", "softmax_cuda", "dot_cuda"):
        assert json.loads((ROOT / d / "spec.json").read_text())["language"] == "cuda"


# ---- the CUDA cell, on any machine ------------------------------------------------------------------------
HERE = Path(__file__).resolve().parent
JAIL = jail.available() or seccomp.available()
needs_jail = pytest.mark.skipif(bool(JAIL), reason=f"no sandbox here: {JAIL}")


@pytest.mark.parametrize("entry", ["axpy_cuda", "softmax_cuda", "dot_cuda", "matmul_cuda"])
def test_cuda_cell_builds_for_each_contract(tmp_path, entry):
    spec = KernelSpec.load(ROOT / entry / "spec.json")
    exe, log = cudacell.build_cuda_cell(spec, tmp_path)
    assert exe and os.access(exe, os.X_OK), log
    stub = (tmp_path / "stub.h").read_text()
    assert f'#define CELL_FUNCTION "{spec.name}"' in stub and "ckls_scribble" in stub and "ckls_hold" in stub
    # plain C: the driver is loaded with dlopen, nothing of the toolkit is linked
    needed = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True).stdout
    assert "libcuda" not in needed and "libcudart" not in needed


def test_gpu_device_nodes_found(tmp_path):
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-caps", "nvidia-x",
                 "null"):
        (tmp_path / name).touch()
    got = [os.path.basename(p) for p in jail.gpu_devices(str(tmp_path))]
    assert got == ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-caps", "nvidia0", "nvidia1"]
    assert jail.gpu_devices(str(tmp_path / "missing")) == []


def test_cuda_jail_binds_the_gpu_and_nothing_of_the_user(monkeypatch, tmp_path):
    monkeypatch.setattr(jail, "gpu_devices", lambda dev="/dev": ["/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia-uvm"])
    drv = tmp_path / "drv" / "lib64"
    drv.mkdir(parents=True)
    (drv / "libcuda.so.1").touch()
    cmd = cudacell.jail_command(["/cell/cell_cuda"], str(tmp_path / "build"), str(drv / "libcuda.so.1"), {"A": "1"},
                                exe="bwrap")
    text = " ".join(cmd)
    for node in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia-uvm"):
        assert f"--dev-bind {node} {node}" in text
    assert "--ro-bind /sys /sys" in text and "--proc /proc" in text and "--unshare-pid" in text
    assert "--unshare-net" in text and "--clearenv" in text and "--cap-drop ALL" in text
    assert f"--ro-bind {drv} {drv}" in text and f"--ro-bind {tmp_path / 'build'} /cell" in text
    assert os.path.expanduser("~") not in text.replace(str(tmp_path), "") and os.getcwd() not in text
    # the folders above a nested mount are made reachable for uid 65534
    assert f"--perms 0755 --dir {drv.parent}" in text
    monkeypatch.setattr(jail, "gpu_devices", lambda dev="/dev": [])
    assert "--dev-bind" not in " ".join(cudacell.jail_command(["x"], "/b", "/usr/lib/libcuda.so.1", {}, exe="bwrap"))


def test_cuda_jail_under_compute_sanitizer(monkeypatch, tmp_path):
    monkeypatch.setattr(jail, "gpu_devices", lambda dev="/dev": ["/dev/nvidia0"])
    tool = tmp_path / "cuda" / "bin" / "compute-sanitizer"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    cmd = cudacell.jail_command(["/cell/cell_cuda", "k.so"], "/b", "/usr/lib/libcuda.so.1", {},
                                wrapper=[str(tool), "--tool", "memcheck"], exe="bwrap")
    i = cmd.index("--")
    assert cmd[i + 1:] == [str(tool), "--tool", "memcheck", "/cell/cell_cuda", "k.so"]
    text = " ".join(cmd)
    assert f"--ro-bind {tmp_path / 'cuda'} {tmp_path / 'cuda'}" in text
    assert "--perms 1777 --tmpfs /tmp" in text and "--unshare-net" in text


PROBE = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <errno.h>
#include <unistd.h>
static void on_sigsys(int sig, siginfo_t *si, void *c) { (void)sig; (void)c; printf("SIGSYS %d\n", si->si_syscall); fflush(stdout); _exit(159); }
static void *idle(void *p) { return p; }
int main(int argc, char **argv) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = on_sigsys; sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 2; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY); struct stat st; fstat(fd, &st);
        struct sock_filter *p = malloc(st.st_size); if (read(fd, p, st.st_size) != st.st_size) return 2; close(fd);
        struct sock_fprog fp = {(unsigned short)(st.st_size / sizeof *p), p};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp)) { perror("seccomp"); return 2; }
    }
    const char *a = argv[1]; long r = 0;
    if (!strcmp(a, "open_ro")) r = open("/etc/hostname", O_RDONLY);
    else if (!strcmp(a, "open_rw")) r = open("/dev/null", O_RDWR);
    else if (!strcmp(a, "open_creat")) r = open("/tmp/ckls-probe-x", O_WRONLY | O_CREAT, 0600);
    else if (!strcmp(a, "ioctl_nv")) { int fd = 0; r = ioctl(fd, _IOC(3, 'F', 0x2b, 0x20), 0); r = 0; }
    else if (!strcmp(a, "ioctl_uvm")) { r = ioctl(0, 0x30000001, 0); r = ioctl(0, 21, 0); r = 0; }
    else if (!strcmp(a, "ioctl_tty")) { int n; r = ioctl(0, FIONREAD, &n); r = 0; }
    else if (!strcmp(a, "socket")) r = socket(AF_INET, SOCK_STREAM, 0);
    else if (!strcmp(a, "unix_socket")) r = socket(AF_UNIX, SOCK_STREAM, 0);
    else if (!strcmp(a, "unix_connect")) { struct sockaddr_un u = {AF_UNIX, "/tmp/nvidia-mps/control"};
        int s = socket(AF_UNIX, SOCK_STREAM, 0); r = s < 0 ? -2 : connect(s, (struct sockaddr *)&u, sizeof u); }
    else if (!strcmp(a, "unlink")) r = unlink("/dev/char/195:0");
    else if (!strcmp(a, "symlink")) r = symlink("../nvidia0", "/dev/char/195:0");
    else if (!strcmp(a, "fork")) { pid_t p = fork(); if (p == 0) _exit(0); waitpid(p, NULL, 0); }
    else if (!strcmp(a, "exec")) { execl("/bin/true", "true", (char *)0); r = -1; }
    else if (!strcmp(a, "thread")) { pthread_t t; r = pthread_create(&t, NULL, idle, NULL); pthread_join(t, NULL); }
    else if (!strcmp(a, "mmap_exec")) r = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0;
    else if (!strcmp(a, "kill")) r = kill(1, 0);
    else if (!strcmp(a, "ptrace")) r = syscall(SYS_ptrace, 0, 0, 0, 0);
    printf("ran %ld %d\n", r, r < 0 ? errno : 0);
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(PROBE)
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(d / "probe"), str(d / "probe.c")], check=True)
    blobs = seccomp.cuda_programs((0x500000000000, 0x500000000000 + (1 << 30)), 1)
    for i, b in enumerate(blobs, 1):
        (d / f"stage{i}.bpf").write_bytes(b)
    return d


# (stages installed, what) -> allowed?
STAGES = {
    1: {"open_ro": True, "open_rw": True, "ioctl_tty": True, "ioctl_nv": True, "thread": True, "mmap_exec": True,
        "socket": False, "fork": False, "exec": False, "kill": False, "ptrace": False},
    2: {"open_ro": True, "open_rw": False, "open_creat": False, "ioctl_nv": True, "ioctl_uvm": True,
        "ioctl_tty": False, "thread": True, "mmap_exec": True, "socket": False, "fork": False, "exec": False},
    3: {"open_ro": False, "open_rw": False, "ioctl_nv": True, "ioctl_uvm": True, "ioctl_tty": False,
        "thread": True, "mmap_exec": False, "socket": False, "fork": False, "exec": False, "kill": False},
}


@pytest.mark.skipif(bool(seccomp.available()), reason=f"seccomp programs cannot be built here: {seccomp.available()}")
@pytest.mark.parametrize("stage,what", [(s, w) for s, table in STAGES.items() for w in table])
def test_cuda_seccomp_stages(probe, stage, what):
    files = [str(probe / f"stage{i}.bpf") for i in range(1, stage + 1)]
    p = subprocess.run([str(probe / "probe"), what, *files], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert "seccomp" not in p.stderr, p.stderr
    if STAGES[stage][what]:
        assert p.returncode == 0 and "ran" in p.stdout, (p.returncode, p.stdout, p.stderr)
    else:
        assert p.returncode == 159 and "SIGSYS" in p.stdout, (p.returncode, p.stdout, p.stderr)


# (stage, what) -> "ran R ERRNO" it prints: the driver's MPS probe and /dev/char links, answered without a kill
ANSWERED = {(1, "unix_socket"): "ran 3 0", (2, "unix_socket"): "ran -1 13", (3, "unix_socket"): "ran -1 13",
            (1, "unix_connect"): "ran -1 2", (1, "unlink"): "ran -1 2", (3, "unlink"): "ran -1 2",
            (1, "symlink"): "ran -1 2", (3, "symlink"): "ran -1 2"}


@pytest.mark.skipif(bool(seccomp.available()), reason=f"seccomp programs cannot be built here: {seccomp.available()}")
@pytest.mark.parametrize("stage,what", sorted(ANSWERED))
def test_cuda_seccomp_answers_the_drivers_probes(probe, stage, what):
    """cuInit fails (CUDA_ERROR_OPERATING_SYSTEM) when its Unix socket is refused, not when no MPS daemon answers:
    stage 1 makes the socket and finds nothing to connect to; later stages refuse the socket; links find no
    /dev/char. Nothing is created."""
    files = [str(probe / f"stage{i}.bpf") for i in range(1, stage + 1)]
    p = subprocess.run([str(probe / "probe"), what, *files], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0 and p.stdout.strip() == ANSWERED[(stage, what)], (p.returncode, p.stdout, p.stderr)


def test_cuda_sanitizer_stages_still_refuse_exec_fork_ptrace():
    for stage in (1, 2, 3):
        f = seccomp._cuda_filter(stage, (0x500000000000, 0x500000000000 + (1 << 30)), 1, sanitizer=True)
        pfc = _pfc(f)
        for name in ("execve", "execveat", "fork", "vfork", "ptrace", "kill"):
            assert f"if ($syscall == {_nr(name)})" not in pfc, (stage, name)


def _pfc(f) -> str:
    with tempfile.TemporaryFile("w+") as t:
        f.export_pfc(t)
        t.seek(0)
        return t.read()


def _nr(name: str) -> int:
    import pyseccomp
    return pyseccomp.resolve_syscall(pyseccomp.system_arch(), name)


# ---- the judge's CUDA path through the cell, on a stand-in driver (no GPU needed) ------------------------------
FAKE_SPEC = KernelSpec.load(AXPY / "spec.json")
FAKE_SIG = "void axpy(int64_t n, float a, const float *x, const float *y, float *out)"
FAKE_OK = "for (int64_t i = 0; i < n; i++) out[i] = a * x[i] + y[i];"
FAKE_HEAD = ("#define _GNU_SOURCE\n#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
             "#include <unistd.h>\n#include <fcntl.h>\n#include <signal.h>\n#include <sys/socket.h>\n"
             "#include <netinet/in.h>\n#include <arpa/inet.h>\n")
# Host code of a hostile candidate, as nvcc would put it into the shared object: constructors and the launcher.
HOSTILE_HOST = {
    "ctor_write_file": ("__attribute__((constructor)) static void c(void) { FILE *f = fopen(WORKSPACE_DIR \"/\" MARKER, \"w\");"
                        " if (f) fclose(f); f = fopen(\"/tmp/\" MARKER, \"w\"); if (f) fclose(f); }\n"
                        f"{FAKE_SIG} {{ {FAKE_OK} }}\n"),
    "ctor_exec": ("__attribute__((constructor)) static void c(void) { if (fork() == 0) { execl(\"/bin/sh\", \"sh\", \"-c\","
                  " \"touch \" WORKSPACE_DIR \"/\" MARKER, (char *)0); _exit(0); } }\n"
                  f"{FAKE_SIG} {{ {FAKE_OK} }}\n"),
    # right only when it got hold of a secret: a FAIL means nothing was found
    "ctor_read_env": ("static int found;\n__attribute__((constructor)) static void c(void) {\n"
                      "  const char *k = getenv(\"ANTHROPIC_API_KEY\"); if (k) { found = 1; fprintf(stderr, \"%s\", k); }\n"
                      "  const char *paths[] = {\"/proc/1/environ\", \"/proc/self/environ\", SSH_KEY_PATH, WORKSPACE_SECRET_PATH};\n"
                      "  for (int i = 0; i < 4; i++) { char b[4096] = {0}; int fd = open(paths[i], O_RDONLY);\n"
                      "    if (fd >= 0) { ssize_t r = read(fd, b, sizeof b - 1); close(fd);\n"
                      "      if (r > 0 && (strstr(b, \"sk-ant\") || strstr(b, \"ssh-\") || strstr(b, \"dbpass\"))) { found = 1; fprintf(stderr, \"%s\", b); } } } }\n"
                      f"{FAKE_SIG} {{ if (found) {{ {FAKE_OK} }} }}\n"),
    "call_reads_file": (f"{FAKE_SIG} {{ char b[256]; int fd = open(\"/etc/hostname\", O_RDONLY); if (fd >= 0) {{ if (read(fd, b, sizeof b)) {{}} close(fd); }}\n"
                        f"  {FAKE_OK} }}\n"),
    "call_exec": f"{FAKE_SIG} {{ if (n > 300 && fork() == 0) {{ execl(\"/bin/true\", \"true\", (char *)0); _exit(0); }} {FAKE_OK} }}\n",
    "call_socket": (f"{FAKE_SIG} {{ int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in sa = {{0}};\n"
                    "  sa.sin_family = AF_INET; sa.sin_port = htons(9); sa.sin_addr.s_addr = htonl(0x7f000001);\n"
                    f"  if (s >= 0) connect(s, (struct sockaddr *)&sa, sizeof sa); {FAKE_OK} }}\n"),
    "kill_judge": f"{FAKE_SIG} {{ kill(getppid(), 9); kill(1, 9); kill(-1, 9); {FAKE_OK} }}\n",
    "forge_answer": (f"{FAKE_SIG} {{ uint64_t ans[6] = {{0x6c6c6563736c6b63ULL, 0, 0, 0, 0, 0}};\n"
                     "  for (int fd = 3; fd < 32; fd++) if (write(fd, ans, sizeof ans)) {} }\n"),
    "writes_past_its_buffer": f"{FAKE_SIG} {{ {FAKE_OK} if (n > 0) out[n] = 1.0f; }}\n",
    "writes_far_outside": f"{FAKE_SIG} {{ {FAKE_OK} if (n > 0) out[n + (1LL << 36)] = 1.0f; }}\n",
    "skips_the_work": f"{FAKE_SIG} {{ (void)n; (void)a; (void)x; (void)y; (void)out; }}\n",
}


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A workspace with a secret, a home with an ssh key, a key in the environment, a private temp folder for the
    judge, and a stand-in driver."""
    key = "sk-ant-fake-" + secrets.token_hex(16)
    home, ws, judge_tmp, drv = tmp_path / "home", tmp_path / "ws", tmp_path / "judge-tmp", tmp_path / "drv"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("ssh-" + secrets.token_hex(16))
    ws.mkdir()
    (ws / ".env").write_text("DB_PASSWORD=dbpass-" + secrets.token_hex(16))
    judge_tmp.mkdir()
    drv.mkdir()
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(drv / "libcuda.so.1"), str(HERE / "fake_libcuda.c")],
                   check=True)
    for d in (tmp_path, home, ws, judge_tmp, drv):
        os.chmod(d, 0o755)
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(tempfile, "tempdir", str(judge_tmp))
    return {"key": key, "ssh": (home / ".ssh" / "id_ed25519").read_text(), "ws_secret": (ws / ".env").read_text()[12:],
            "home": home, "ws": ws, "tmp": judge_tmp, "drv": drv, "marker": "ckls-pwned-" + secrets.token_hex(4)}


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _fake_judge(world, host_code: str, cases, survey: int = 0) -> tuple[list[dict], str]:
    """The host code compiled by gcc, judged through the harness and the CUDA cell on the stand-in driver."""
    build = world["tmp"] / "build"
    build.mkdir()
    os.chmod(build, 0o755)
    defs = {"WORKSPACE_DIR": str(world["ws"]), "MARKER": world["marker"],
            "SSH_KEY_PATH": str(world["home"] / ".ssh/id_ed25519"), "WORKSPACE_SECRET_PATH": str(world["ws"] / ".env")}
    src = build / "kernel.c"
    src.write_text(FAKE_HEAD + "".join(f'#define {k} "{v}"\n' for k, v in defs.items()) + host_code)
    so = build / "kernel_cuda.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    exe, log = cudacell.build_cuda_cell(FAKE_SPEC, build, survey=survey)
    assert exe, log
    init = {"spec": FAKE_SPEC.to_dict(), "so": str(so), "ref": str(AXPY / "original.py") + "::axpy", "cell": exe,
            "timeout_s": 10.0, "guard_pad": 16, "arena_mb": 64}
    results, said = [], ""
    with Worker(init, Limits(request_timeout_s=30, address_space_mb=0), isolate=False,
                env={"LD_LIBRARY_PATH": str(world["drv"])}) as w:
        for case in cases:
            r = w.request({"op": "case", "case": case})
            results.append(r)
            said += json.dumps(r)
        said += w.log_tail(100000)
        cell_log = Path(w.tmp, "cell.log")
        said += cell_log.read_text(errors="replace") if cell_log.exists() else ""
    shutil.rmtree(build)
    return results, said


def _cases(*ns, layout="contig"):
    return [{"sizes": {"n": n}, "family": "normal", "layout": layout, "threads": 1, "seed": 5 + n} for n in ns]


@needs_jail
def test_fake_driver_correct_launcher_passes_through_the_cell(world):
    results, said = _fake_judge(world, f"{FAKE_SIG} {{ {FAKE_OK} }}\n",
                                _cases(0, 1, 257, 70001) + _cases(1021, layout="offset") + _cases(300, layout="alias"))
    assert all(r.get("ok") for r in results), results
    assert not jail.running_under(world["tmp"]) and not list(world["tmp"].iterdir())


@needs_jail
@pytest.mark.parametrize("name", sorted(HOSTILE_HOST))
def test_fake_driver_hostile_host_code_fails(world, name):
    """The jail and the three seccomp stages alone (no build checks: gcc built it), on the stand-in driver."""
    before = _snapshot(world["ws"])
    results, said = _fake_judge(world, HOSTILE_HOST[name], _cases(257, 1021))
    assert any(not r.get("ok") for r in results), (name, results)
    assert all(r.get("check") != "harness_error" for r in results), (name, results)
    assert _snapshot(world["ws"]) == before, "the user's files changed"
    assert not jail.running_under(world["tmp"]), "a cell is still running"
    assert not list(world["tmp"].iterdir()), f"left behind: {list(world['tmp'].iterdir())}"
    assert not os.path.exists("/tmp/" + world["marker"])
    for secret in ("key", "ssh", "ws_secret"):
        assert world[secret] not in said, f"{secret} leaked"


@needs_jail
def test_survey_cell_names_refused_calls_and_goes_on(world):
    """bench/cuda_survey.py's survey build: a call the filters trap is logged with its stage and answered EPERM (the
    socket is never made), and the cell carries on, so one GPU run lists every such call a driver makes."""
    sys.path.insert(0, str(HERE.parent / "bench"))
    from cuda_survey import refused
    code = HOSTILE_HOST["call_socket"].replace("int s = socket", "mkdir(\"/tmp/x.lock\", 0700); int s = socket")
    results, said = _fake_judge(world, code, _cases(257, 1021), survey=1)
    assert all(r.get("ok") for r in results), results
    calls = [(stage, seccomp.syscall_name(nr), what) for (stage, nr, what), _ in refused(said)]
    assert (3, "socket", "") in calls and (3, "mkdir", '"/tmp/x.lock"') in calls, said[-2000:]
    assert "forbidden system call" not in said


@needs_jail
def test_trace_cell_logs_every_call_with_its_result(world):
    """The trace build: the judge's filters off, every call from the driver's start logged with its result."""
    code = HOSTILE_HOST["call_reads_file"]
    results, said = _fake_judge(world, code, _cases(257), survey=2)
    assert all(r.get("ok") for r in results), results
    traced = [ln for ln in said.splitlines() if ln.startswith("ckls-cell: trace: ")]
    assert any('"/etc/hostname" = ' in ln for ln in traced), said[-2000:]
    assert any(ln.startswith("ckls-cell: trace: stage 3 ") for ln in traced)


# ---- hostile CUDA candidates: nvcc-built, judged through verify() on a GPU ------------------------------------
CU_HEAD = FAKE_HEAD + "#include <cuda_runtime.h>\n"
CU_KERNEL = ("__global__ static void k(int64_t n, float a, const float *x, const float *y, float *out) {\n"
             "    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;\n    %s\n}\n")
CU_OK = "if (i < n) out[i] = a * x[i] + y[i];"
CU_LAUNCH = "if (n > 0) k<<<(unsigned)((n + 255) / 256), 256>>>(n, a, x, y, out);"
CU_SIG = 'extern "C" ' + FAKE_SIG
HOSTILE_CUDA = {
    "ctor_write_file": ("__attribute__((constructor)) static void c(void) { FILE *f = fopen(WORKSPACE_DIR \"/\" MARKER, \"w\");"
                        " if (f) fclose(f); f = fopen(\"/tmp/\" MARKER, \"w\"); if (f) fclose(f); }\n"
                        + CU_KERNEL % CU_OK + f"{CU_SIG} {{ {CU_LAUNCH} }}\n"),
    "ctor_exec": ("__attribute__((constructor)) static void c(void) { if (fork() == 0) { execl(\"/bin/sh\", \"sh\", \"-c\","
                  " \"touch \" WORKSPACE_DIR \"/\" MARKER, (char *)0); _exit(0); } }\n"
                  + CU_KERNEL % CU_OK + f"{CU_SIG} {{ {CU_LAUNCH} }}\n"),
    # right only when it got hold of a secret: a FAIL means nothing was found
    "ctor_read_env": ("static int found;\n__attribute__((constructor)) static void c(void) {\n"
                      "  const char *e = getenv(\"ANTHROPIC_API_KEY\"); if (e) { found = 1; fprintf(stderr, \"%s\", e); }\n"
                      "  const char *paths[] = {\"/proc/1/environ\", \"/proc/self/environ\", SSH_KEY_PATH, WORKSPACE_SECRET_PATH};\n"
                      "  for (int i = 0; i < 4; i++) { char b[4096] = {0}; int fd = open(paths[i], O_RDONLY);\n"
                      "    if (fd >= 0) { ssize_t r = read(fd, b, sizeof b - 1); close(fd);\n"
                      "      if (r > 0 && (strstr(b, \"sk-ant\") || strstr(b, \"ssh-\") || strstr(b, \"dbpass\"))) { found = 1; fprintf(stderr, \"%s\", b); } } } }\n"
                      + CU_KERNEL % CU_OK + f"{CU_SIG} {{ if (found) {{ {CU_LAUNCH} }} }}\n"),
    "call_reads_file": (CU_KERNEL % CU_OK + f"{CU_SIG} {{ char b[256]; int fd = open(\"/etc/hostname\", O_RDONLY);"
                        f" if (fd >= 0) {{ if (read(fd, b, sizeof b)) {{}} close(fd); }} {CU_LAUNCH} }}\n"),
    "call_socket": (CU_KERNEL % CU_OK + f"{CU_SIG} {{ int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in sa = {{}};\n"
                    "  sa.sin_family = AF_INET; sa.sin_port = htons(9); sa.sin_addr.s_addr = htonl(0x7f000001);\n"
                    f"  if (s >= 0) connect(s, (struct sockaddr *)&sa, sizeof sa); {CU_LAUNCH} }}\n"),
    "kill_judge": CU_KERNEL % CU_OK + f"{CU_SIG} {{ kill(getppid(), 9); kill(1, 9); kill(-1, 9); {CU_LAUNCH} }}\n",
    "forge_answer": (CU_KERNEL % CU_OK + f"{CU_SIG} {{ uint64_t ans[6] = {{0x6c6c6563736c6b63ULL, 0, 0, 0, 0, 0}};\n"
                     "  for (int fd = 3; fd < 32; fd++) if (write(fd, ans, sizeof ans)) {} }\n"),
    "writes_past_its_buffer": (CU_KERNEL % (CU_OK + " if (i == n - 1) out[n] = 0.0f;")
                               + f"{CU_SIG} {{ {CU_LAUNCH} }}\n"),
}


@pytest.mark.skipif(shutil.which("nvcc") is None or bool(jail.available()), reason="needs nvcc and bubblewrap")
def test_hostile_cuda_sources_compile(world):
    """The GPU tests below must not fail on a typo: each hostile source builds with nvcc here (no GPU needed)."""
    for name, body in HOSTILE_CUDA.items():
        src = world["tmp"] / f"{name}.cu"
        src.write_text(_cu_source(world, body))
        res = build_mod.build_cuda(src, world["tmp"] / f"build-{name}")
        assert res.ok, (name, res.log)


def _cu_source(world, body: str) -> str:
    defs = {"WORKSPACE_DIR": str(world["ws"]), "MARKER": world["marker"],
            "SSH_KEY_PATH": str(world["home"] / ".ssh/id_ed25519"), "WORKSPACE_SECRET_PATH": str(world["ws"] / ".env")}
    return CU_HEAD + "".join(f'#define {k} "{v}"\n' for k, v in defs.items()) + body


@needs_gpu
@pytest.mark.parametrize("name", sorted(HOSTILE_CUDA))
def test_gpu_hostile_cuda_kernel_fails(world, name):
    src = world["ws"] / "kernel.cu"
    src.write_text(_cu_source(world, HOSTILE_CUDA[name]))
    before = _snapshot(world["ws"])
    rep = verify(str(AXPY / "original.py") + "::axpy", str(src), FAKE_SPEC, spec_path=str(AXPY / "spec.json"),
                 budget=QUICK, limits=Limits(request_timeout_s=30.0), seed=1)
    said = rep.to_text() + rep.to_json()
    assert rep.verdict in ("FAIL", "ERROR"), said
    if name not in ("forge_answer",):
        assert rep.verdict == "FAIL", said  # the candidate's failure, not the judge's
    assert _snapshot(world["ws"]) == before, "the user's files changed"
    assert not jail.running_under(world["tmp"]), "a cell is still running"
    assert not os.path.exists("/tmp/" + world["marker"])
    for secret in ("key", "ssh", "ws_secret"):
        assert world[secret] not in said, f"{secret} leaked"


@needs_gpu
def test_gpu_correct_kernel_passes_in_the_cell(tmp_path):
    rep = _judge(tmp_path, CU_OK, CU_LAUNCH)
    assert rep.verdict == "PASS", rep.to_text()
    assert "cuda_cell" in rep.isolation
