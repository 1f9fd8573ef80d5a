"""Running the harness in a separate, limited process.

The child gets rlimits (CPU seconds, address space, file size, no core files), a process count (RLIMIT_NPROC,
or a pids cgroup when running as root, whom RLIMIT_NPROC does not bind), a fresh network namespace and PID
namespace where the OS allows (util-linux `unshare`), an empty temp dir as its working directory, and a wall
clock deadline per request. A segfault, hang, fork bomb or huge allocation ends the child, never the caller:
the caller sees a Crash with the signal and the tail of the child's log (where ASan/UBSan reports land).
"""
from __future__ import annotations

import json
import os
import resource
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_PKG_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class Limits:
    cpu_s: int = 900             # CPU seconds for the child's whole life (requests have their own deadline)
    address_space_mb: int = 8192  # RLIMIT_AS; not applied to sanitizer builds (ASan reserves terabytes)
    file_size_mb: int = 16
    processes: int = 64          # tasks (threads count) for the unprivileged user
    request_timeout_s: float = 30.0
    network: bool = False
    pid_namespace: bool = True   # off for CUDA: the driver's cuInit fails inside a new PID namespace


@dataclass
class Crash(Exception):
    reason: str                  # "signal", "exit", "timeout", "protocol"
    detail: str
    log_tail: str = ""

    def __str__(self):
        return f"{self.reason}: {self.detail}"


_UNSHARE_OK: list[str] | None = None


def _unshare_prefix() -> list[str]:
    """`unshare` flags that work here (probed once): new net + pid namespaces, killed with the parent."""
    global _UNSHARE_OK
    if _UNSHARE_OK is not None:
        return _UNSHARE_OK
    _UNSHARE_OK = []
    exe = shutil.which("unshare")
    if exe:
        for flags in (["--net", "--pid", "--fork", "--kill-child"], ["--net"],
                      ["--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"]):
            try:
                if subprocess.run([exe, *flags, "true"], capture_output=True, timeout=10).returncode == 0:
                    _UNSHARE_OK = [exe, *flags]
                    break
            except (OSError, subprocess.TimeoutExpired):
                pass
    return _UNSHARE_OK


def isolation() -> dict:
    """What isolation this machine gives the candidate (for the report)."""
    from . import jail, seccomp
    pre = _unshare_prefix()
    if os.getuid() != 0:
        procs = "RLIMIT_NPROC"
    else:
        cg = _make_pids_cgroup(8)
        procs = "pids cgroup" if cg else "none (root without a writable pids cgroup)"
        if cg:
            _remove_cgroup(cg)
    return {"c_cell": jail.available() or seccomp.available() or "bubblewrap jail + seccomp filter",
            "network_namespace": "--net" in pre, "pid_namespace": "--pid" in pre, "process_limit": procs}


_PIDS_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")


def _make_pids_cgroup(limit: int) -> str | None:
    """A fresh pids cgroup with pids.max = limit, or None where none can be made."""
    for root in _PIDS_ROOTS:
        if not os.path.exists(os.path.join(root, "pids.max")) and not os.path.exists(
                os.path.join(root, "cgroup.procs")):
            continue
        path = tempfile.mkdtemp(prefix="ckls-verify-", dir=root) if os.access(root, os.W_OK) else None
        if not path:
            continue
        try:
            with open(os.path.join(path, "pids.max"), "w") as f:
                f.write(str(limit))
            return path
        except OSError:
            _remove_cgroup(path)
    return None


def _remove_cgroup(path: str) -> None:
    for _ in range(50):  # the killed tasks may take a moment to leave
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


class Worker:
    """One sandboxed harness process; restarts after a crash."""

    def __init__(self, init: dict, limits: Limits | None = None, env: dict | None = None,
                 sanitizer: bool = False, wrapper: list[str] | None = None, isolate: bool = True):
        self.init_req = dict(init, op="init")
        self.limits = limits or Limits()
        self.extra_env = env or {}
        self.sanitizer = sanitizer
        self.wrapper = list(wrapper or [])  # a program the harness runs under (compute-sanitizer ...)
        # Namespaces for the judge's process itself: needed where the candidate runs in it (CUDA); a C candidate
        # runs in its own jailed cell, and this process then stays in the host's PID space so the cell does too.
        self.isolate = isolate
        self.proc = None
        self.tmp = None
        self.starts = 0

    # ---- lifecycle -----------------------------------------------------------------------------------
    def _preexec(self):
        lim = self.limits
        os.setsid()
        if self.cgroup:  # root: RLIMIT_NPROC does not bind uid 0, a pids cgroup does
            with open(os.path.join(self.cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_s, lim.cpu_s + 5))
        if self.isolate:  # else the cell bounds its own writes (the judge's shared arena is a file too)
            resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_size_mb << 20,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if not self.sanitizer and lim.address_space_mb:  # 0: none (CUDA maps terabytes of address space)
            resource.setrlimit(resource.RLIMIT_AS, (lim.address_space_mb << 20,) * 2)
        if os.getuid() != 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (lim.processes + _tasks_of(os.getuid()),) * 2)

    def start(self) -> None:
        self.close()
        self.tmp = tempfile.mkdtemp(prefix="ckls-verify-")
        os.chmod(self.tmp, 0o777)
        r, w = os.pipe()
        self.cgroup = _make_pids_cgroup(self.limits.processes) if os.getuid() == 0 else None
        argv = self.wrapper + [sys.executable, "-c", "from ckls.verify.harness import main; main()", str(w)]
        pre = _unshare_prefix()
        if not self.limits.pid_namespace and "--pid" in pre:
            pre = [pre[0], "--user", "--map-root-user", "--net"] if "--user" in pre else [pre[0], "--net"]
        if not self.limits.network and pre and self.isolate:
            # A shell sits at PID 1 of the new namespace: PID 1 ignores signals it has no handler for, so
            # the harness (and abort() in a kernel) must not be PID 1. The shell reports 128+signal.
            argv = pre + ["/bin/sh", "-c", '"$@"; exit $?', "sh"] + argv
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": _PKG_ROOT,
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "HOME": self.tmp, "TMPDIR": self.tmp, "PYTHONDONTWRITEBYTECODE": "1", **self.extra_env}
        self.log_path = os.path.join(self.tmp, "child.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log, stderr=log, cwd=self.tmp, env=env,
                                     pass_fds=(w,), preexec_fn=self._preexec, close_fds=True)
        log.close()
        os.close(w)
        self.rfd = r
        self.buf = b""
        self.starts += 1
        res = self._request(self.init_req, self.limits.request_timeout_s + 30)
        if not res.get("ok"):
            raise Crash("init", res.get("detail", "harness failed to start"), self.log_tail())

    def close(self) -> None:
        if self.proc is not None:
            from .jail import kill_tree
            kill_tree(self.proc.pid)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.close(self.rfd)
            except OSError:
                pass
            for f in (self.proc.stdin,):
                try:
                    f.close()
                except OSError:
                    pass
            self.proc = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if getattr(self, "cgroup", None):
            _remove_cgroup(self.cgroup)
            self.cgroup = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- requests ------------------------------------------------------------------------------------
    def log_tail(self, n: int = 4000) -> str:
        try:
            data = Path(self.log_path).read_bytes()
        except OSError:
            return ""
        return data[-n:].decode("utf-8", "replace")

    def request(self, req: dict, timeout: float | None = None) -> dict:
        """Send one request; on a crash or timeout the child is killed (and restarted next time)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            ans = self._request(req, timeout or self.limits.request_timeout_s)
        except Crash:
            self.close_keep_log()
            raise
        if ans.pop("restart", False):  # the child's CUDA context is broken: start afresh next time
            self.close_keep_log()
        return ans

    def finish(self, timeout: float = 60.0) -> int | None:
        """End the child the polite way (end of input), so a tool it runs under can write its summary;
        returns its exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        from .jail import end_politely
        rc = end_politely(self.proc, self.proc.stdin.close, timeout)
        self.last_log = self.log_tail(64000)
        self.close()
        return rc

    def close_keep_log(self):
        tail = self.log_tail()
        self.close()
        self.last_log = tail

    def _request(self, req: dict, timeout: float) -> dict:
        # The kernel runs inside the harness and could print a forged answer on the answer channel; an
        # answer counts only when it carries this request's nonce and nothing else arrived with it.
        nonce = secrets.token_hex(16)
        req = dict(req, nonce=nonce)
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the child is gone; the read below reports why
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                tail = self.log_tail()
                raise Crash("timeout", f"no answer within {timeout:.0f} s (hang or runaway work)", tail)
            ready, _, _ = select.select([self.rfd], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self.rfd, 1 << 16)
                if not chunk:
                    raise self._died()
                self.buf += chunk
            elif self.proc.poll() is not None:
                raise self._died()
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            ans = json.loads(line)
        except ValueError:
            raise Crash("protocol", "garbage on the answer channel", self.log_tail()) from None
        if not isinstance(ans, dict) or ans.pop("nonce", None) != nonce or self.buf:
            raise Crash("protocol", "forged or extra answer on the answer channel", self.log_tail())
        return ans

    def _died(self) -> Crash:
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        tail = self.log_tail(16000)
        san = sanitizer_excerpt(tail)
        if san:
            return Crash("sanitizer", san.splitlines()[0].split("ERROR: ")[-1].strip(), san)
        sig = _signal_from_log(tail)
        if rc is not None and rc > 128 and self.proc.args[0] != sys.executable:
            rc = -(rc - 128)  # behind the namespace's shell
        if rc is not None and rc < 0:
            return Crash("signal", f"killed by {signal_name(-rc)}", tail)
        if sig:
            return Crash("signal", f"killed by {sig}", tail)
        return Crash("exit", f"child exited with status {rc}", tail)


def signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def sanitizer_excerpt(log: str) -> str:
    """The head of an ASan/UBSan report (error line, first frames, summary), or a ThreadSanitizer report whole
    up to its summary (both accesses and where the memory lives), or "" when there is none."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if "WARNING: ThreadSanitizer:" in line:
            end = next((j for j in range(i, min(len(lines), i + 80)) if lines[j].startswith("SUMMARY:")), i + 40)
            return "\n".join(lines[i:end + 1])
        if "ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line or "runtime error:" in line:
            head = lines[i:i + 14]
            summary = [ln for ln in lines[i:] if ln.startswith("SUMMARY:")][:1]
            return "\n".join(head + [ln for ln in summary if ln not in head])
    return ""


def _signal_from_log(tail: str) -> str | None:
    # Behind `unshare --fork` the child's signal shows as unshare's exit status 128+N or in its message.
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGKILL", "SIGXCPU"):
        if name in tail:
            return name
    return None


def _tasks_of(uid: int) -> int:
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                pass
    return n
