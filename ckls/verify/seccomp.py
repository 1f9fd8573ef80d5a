"""The system calls a candidate kernel may make, as two seccomp programs built with libseccomp (pyseccomp).

Stage 1 holds while the kernel's shared object loads (its constructors run then): files may be opened for
reading (the loader needs that) and code mapped, but nothing may be executed, forked, connected, traced or
written to a file by name. Stage 2 holds from then on, around every call: no file opens at all, no new
executable memory, and no change to the mappings of the judge's arena. Both stack, so stage 2 only narrows
stage 1. A forbidden call raises SIGSYS (the cell's handler names it and exits); clone3 answers ENOSYS so that
glibc falls back to clone, whose flags can be checked (threads yes, processes no).

The lists are what glibc, libgomp (OpenMP) and the ASan/UBSan runtimes need to run a kernel, nothing more.
"""
from __future__ import annotations

import errno
import os
import tempfile

# Calls any kernel may make (memory, threads, time, signals to itself, its own open descriptors).
_ALWAYS = """
read write readv writev pread64 close fstat lseek
brk mmap munmap mremap madvise mprotect mincore
futex set_robust_list get_robust_list rseq sched_yield sched_get_priority_max sched_get_priority_min
sched_getaffinity sched_getparam sched_getscheduler
gettid getpid getppid getuid geteuid getgid getegid getrlimit getrusage sysinfo uname
rt_sigprocmask rt_sigreturn sigaltstack
clock_gettime clock_getres gettimeofday time nanosleep clock_nanosleep getrandom
exit exit_group restart_syscall
""".split()
# Only while the shared object loads.
_LOADING = "openat newfstatat readlink readlinkat access faccessat faccessat2 getcwd statx getdents64".split()

PROT_EXEC = 0x4
MAP_FIXED = 0x10
CLONE_THREAD = 0x10000
SIGSYS = 31
PR_SET_NAME, PR_GET_NAME, PR_SET_SECCOMP = 15, 16, 22
O_ACCMODE = 0o3
O_CREAT = 0o100


class SeccompUnavailable(RuntimeError):
    pass


def _lib():
    try:
        import pyseccomp
    except ImportError as e:  # the package is a dependency; libseccomp.so.2 is the system's
        raise SeccompUnavailable("the seccomp library is missing (pip install pyseccomp; the system needs "
                                 f"libseccomp2): {e}") from None
    return pyseccomp


# Calls that act on a process: allowed on the cell itself only (0 or its own pid), never on another. (Reading a
# thread's scheduling settings is allowed above: threads are named by tid, which no filter can tie to the cell.)
_SELF = {"tgkill": 0, "tkill": 0, "sched_setaffinity": 0, "prlimit64": 0}


def _filter(stage: int, arena: tuple[int, int], pid: int, relaxed_open: bool):
    s = _lib()
    f = s.SyscallFilter(defaction=s.TRAP)
    lo, hi = arena
    for name, arg in _SELF.items():
        f.add_rule(s.ALLOW, name, s.Arg(arg, s.EQ, pid))
        if name not in ("tgkill", "tkill"):
            f.add_rule(s.ALLOW, name, s.Arg(arg, s.EQ, 0))
    for name in _ALWAYS:
        if name in ("mmap", "mprotect", "munmap", "mremap", "madvise"):
            continue
        f.add_rule(s.ALLOW, name)
    # A kernel keeps its SIGSYS handler away from ours, and creates threads but never processes.
    f.add_rule(s.ALLOW, "rt_sigaction", s.Arg(0, s.NE, SIGSYS))
    f.add_rule(s.ALLOW, "clone", s.Arg(0, s.MASKED_EQ, CLONE_THREAD, CLONE_THREAD))
    f.add_rule(s.ERRNO(errno.ENOSYS), "clone3")
    # More filters only narrow what is allowed; thread names are harmless.
    for option in (PR_SET_SECCOMP, PR_SET_NAME, PR_GET_NAME):
        f.add_rule(s.ALLOW, "prctl", s.Arg(0, s.EQ, option))
    # Memory: anywhere outside the arena [lo, hi); executable only while loading.
    below, span = s.Arg(0, s.LT, lo - (1 << 32)), s.Arg(1, s.LE, 1 << 32)
    above = s.Arg(0, s.GE, hi)
    for name in ("munmap", "mremap", "madvise"):
        f.add_rule(s.ALLOW, name, below, span)
        f.add_rule(s.ALLOW, name, above)
    if stage == 1:
        f.add_rule(s.ALLOW, "mprotect", below, span)
        f.add_rule(s.ALLOW, "mprotect", above)
        f.add_rule(s.ALLOW, "mmap", s.Arg(3, s.MASKED_EQ, MAP_FIXED, 0))
        f.add_rule(s.ALLOW, "mmap", s.Arg(3, s.MASKED_EQ, MAP_FIXED, MAP_FIXED), below, span)
        f.add_rule(s.ALLOW, "mmap", s.Arg(3, s.MASKED_EQ, MAP_FIXED, MAP_FIXED), above)
        for name in _LOADING:
            if name != "openat":
                f.add_rule(s.ALLOW, name)
        f.add_rule(s.ALLOW, "openat", s.Arg(2, s.MASKED_EQ, O_ACCMODE | O_CREAT, 0))
    else:
        noexec = s.Arg(2, s.MASKED_EQ, PROT_EXEC, 0)
        f.add_rule(s.ALLOW, "mprotect", below, span, noexec)
        f.add_rule(s.ALLOW, "mprotect", above, noexec)
        fixed, notfixed = s.Arg(3, s.MASKED_EQ, MAP_FIXED, MAP_FIXED), s.Arg(3, s.MASKED_EQ, MAP_FIXED, 0)
        f.add_rule(s.ALLOW, "mmap", noexec, notfixed)
        f.add_rule(s.ALLOW, "mmap", noexec, fixed, above)
        f.add_rule(s.ALLOW, "mmap", noexec, fixed, below, span)
    if relaxed_open:  # the sanitizer runtime's report opens /proc/self/maps, asks isatty: a refusal, not a kill
        for name in ("open", "openat", "readlink", "readlinkat", "newfstatat", "stat", "ioctl"):
            if stage == 2 or name not in _LOADING:
                f.add_rule(s.ERRNO(errno.EACCES), name)
    return f


def programs(arena: tuple[int, int], pid: int, relaxed_open: bool = False) -> tuple[bytes, bytes]:
    """BPF of stage 1 and stage 2 for the process pid and an arena spanning [lo, hi)."""
    out = []
    for stage in (1, 2):
        f = _filter(stage, arena, pid, relaxed_open)
        with tempfile.TemporaryFile() as tmp:
            f.export_bpf(tmp)
            tmp.seek(0)
            out.append(tmp.read())
    return out[0], out[1]


def syscall_name(nr: int) -> str:
    try:
        return _lib().resolve_syscall(_lib().system_arch(), nr).decode()
    except Exception:  # noqa: BLE001 - a name is a courtesy; the number is the fact
        return f"#{nr}"


def available() -> str | None:
    """None when seccomp programs can be built here, else why not."""
    try:
        programs((1 << 44, (1 << 44) + (1 << 20)), os.getpid())
    except SeccompUnavailable as e:
        return str(e)
    except Exception as e:  # noqa: BLE001
        return f"seccomp filters cannot be built here: {e}"
    return None

