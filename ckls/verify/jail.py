"""Bubblewrap command lines: the filesystem and namespaces a candidate (or the compiler reading its source) sees.

Inside: /usr read-only (with the usual /bin, /lib links), /etc/ld.so.cache, a minimal /dev, an empty private /tmp,
its own /proc in a new PID namespace (only the jail's own processes) or no /proc at all, and the folders the caller binds — nothing of
$HOME, the workspace or the judge's files; no network, IPC, UTS or cgroup namespace of the host's; an empty
environment; every capability dropped; killed with its parent. As root without a user namespace the cell drops to
uid 65534 itself; otherwise bubblewrap runs in a user namespace.

Without bubblewrap nothing runs: the caller reports an error saying how to install it, never a weaker sandbox.
"""
from __future__ import annotations

import os
import shutil
import subprocess

INSTALL_HINT = ("bubblewrap (bwrap) is needed to run candidate kernels in a sandbox: install it "
                "(Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)")


class JailUnavailable(RuntimeError):
    pass


_PROBE: dict[str, str | None] = {}


def bwrap() -> str:
    """Path of a working bwrap, probed once; JailUnavailable with the reason otherwise."""
    if "exe" not in _PROBE:
        exe = shutil.which("bwrap")
        why = None if exe else INSTALL_HINT
        if exe:
            try:
                p = subprocess.run(command(["/bin/true"], exe=exe), capture_output=True, text=True, timeout=30,
                                   env={})
                if p.returncode != 0:
                    why = ("bubblewrap cannot create a sandbox here (" + (p.stderr.strip().splitlines() or
                           ["exit status %d" % p.returncode])[-1][:200] + "); unprivileged user namespaces may "
                           "be disabled (sysctl kernel.unprivileged_userns_clone=1, or an AppArmor profile for bwrap)")
            except (OSError, subprocess.TimeoutExpired) as e:
                why = f"bubblewrap failed to start: {e}"
        _PROBE["exe"], _PROBE["why"] = exe, why
    if _PROBE["why"]:
        raise JailUnavailable(_PROBE["why"])
    return _PROBE["exe"]


def available() -> str | None:
    try:
        bwrap()
    except JailUnavailable as e:
        return str(e)
    return None


def command(argv: list[str], *, ro: dict[str, str] | None = None, rw: dict[str, str] | None = None,
            chdir: str = "/tmp", env: dict[str, str] | None = None, exe: str | None = None,
            setuid: bool = False, proc: bool = True, gpu: bool = False, open_tmp: bool = False) -> list[str]:
    """The bwrap command running argv; ro/rw map host paths to paths inside. proc=False: no /proc at all and
    no PID namespace (a small pid would tell a kernel it is being judged; seccomp keeps it from forking or
    signalling anyone but itself, and without /proc it sees no other process). gpu=True: the NVIDIA device
    nodes that exist here (gpu_devices()) and a read-only /sys, as the CUDA driver needs (its /proc/driver/nvidia
    comes with the jail's own /proc). open_tmp: /tmp and /dev/shm writable by anyone (compute-sanitizer's
    library in the cell, which runs as nobody, keeps files there)."""
    cmd = [exe or bwrap(), "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    if proc:
        cmd.append("--unshare-pid")
    if os.getuid() != 0:
        cmd.append("--unshare-user")
    elif setuid:  # the cell turns itself into uid 65534, which clears every capability left
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = "/" + top
        if os.path.islink(p):
            cmd += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            cmd += ["--ro-bind", p, p]
    cmd += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--dev", "/dev"]
    cmd += (["--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/dev/shm"] if open_tmp
            else ["--tmpfs", "/tmp"])
    if proc:
        cmd += ["--proc", "/proc"]
    if gpu:
        cmd += ["--ro-bind", "/sys", "/sys"]
        for node in gpu_devices():
            cmd += ["--dev-bind", node, node]
    system, made = ("/usr", "/dev", "/proc", "/sys", "/etc"), {"/tmp"}
    for host, inside in [*(ro or {}).items(), *(rw or {}).items()]:
        # bubblewrap makes the folders above a mount point 0700 (root's): nobody could not reach a nested one
        parts = inside.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if d not in made and not any(d == m or d.startswith(m + "/") for m in system):
                cmd += ["--perms", "0755", "--dir", d]
                made.add(d)
        cmd += ["--ro-bind" if host in (ro or {}) and (ro or {})[host] == inside else "--bind", host, inside]
    for k, v in (env or {}).items():
        cmd += ["--setenv", k, v]
    return cmd + ["--chdir", chdir, "--", *argv]


GPU_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia-caps")


def gpu_devices(dev: str = "/dev") -> list[str]:
    """The NVIDIA device nodes present: the control node, each GPU's (nvidia0, nvidia1 ...), unified memory,
    and the MIG capability folder."""
    try:
        names = os.listdir(dev)
    except OSError:
        return []
    out = [n for n in GPU_NODES if n in names]
    out += sorted((n for n in names if n.startswith("nvidia") and n[6:].isdigit()), key=lambda n: int(n[6:]))
    return [os.path.join(dev, n) for n in out]


def descendants(pid: int) -> list[int]:
    """Every process below pid (from /proc), deepest last."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything below it, the deepest too (a cell that became nobody outlives its jail
    otherwise: bubblewrap, without capabilities, cannot signal it)."""
    import signal
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def end_politely(proc: subprocess.Popen, close_input, timeout: float) -> int | None:
    """Close the child's input (the end of its requests) and let it leave on its own, so a tool it runs under
    (a sanitizer) writes its summary: its exit status, or None if it is still there after timeout."""
    try:
        close_input()
    except OSError:
        pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def running_under(folder: str) -> list[int]:
    """Cells jailed with a folder below `folder` mounted (their mount table says so), orphans included."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"/cell/cell" not in f.read():
                    continue
            with open(f"/proc/{entry}/mountinfo") as f:
                if str(folder) in f.read():
                    out.append(int(entry))
        except OSError:
            pass
    return out

