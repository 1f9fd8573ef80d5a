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
AF_UNIX = 1
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


def _bpf(f) -> bytes:
    with tempfile.TemporaryFile() as tmp:
        f.export_bpf(tmp)
        tmp.seek(0)
        return tmp.read()


def programs(arena: tuple[int, int], pid: int, relaxed_open: bool = False) -> tuple[bytes, bytes]:
    """BPF of stage 1 and stage 2 for the process pid and an arena spanning [lo, hi)."""
    return _bpf(_filter(1, arena, pid, relaxed_open)), _bpf(_filter(2, arena, pid, relaxed_open))


# ---- the CUDA cell (cell/cuda_cell.c) ---------------------------------------------------------------------
# Three stages, each stacked on the one before (so each only narrows):
#   1. the driver starts (cuInit, the primary context, the judge's own PTX module, a first allocation and copy):
#      no candidate code is loaded yet. Files may be opened read-write (the driver opens /dev/nvidiactl,
#      /dev/nvidia0, /dev/nvidia-uvm O_RDWR, reads /proc/driver/nvidia, /proc/devices, /sys), any ioctl, code
#      mapped (the PTX JIT compiler is a shared object the driver loads).
#   2. the candidate's shared object loads (its constructors and the CUDA runtime's registration run) and its
#      first call (the CUDA runtime starts inside it, under this stage): files opened for reading only, ioctl
#      only with NVIDIA's request numbers.
#   3. every other call: no file opens, no new executable memory, ioctl only with NVIDIA's request numbers.
# Never, in any stage: exec, fork (clone without CLONE_THREAD), sockets, ptrace, signals to other processes (a
# Unix socket is refused with EACCES rather than trapped: the driver asks for one and manages without).
# The arena is bounded like the C cell's, with room for the driver's multi-GiB reservations below it.
CUDA_SPAN = 1 << 40
# Every call the driver's own threads (created in stage 1, synchronised to each later stage) and its calls
# make: waiting on its event file descriptors, descriptor flags, NUMA placement of pinned memory.
_CUDA_ALWAYS = """
poll ppoll select pselect6 epoll_create1 epoll_ctl epoll_wait epoll_pwait
fcntl dup dup3 pipe2 eventfd2 get_mempolicy mbind getcpu membarrier mlock munlock
stat lstat newfstatat statx access faccessat faccessat2 readlink readlinkat
""".split()
_CUDA_LOADING = _LOADING + ["statfs", "fstatfs"]
NV_IOCTL_TYPE = 0x4600           # _IOC type 'F' (nvidiactl, nvidia0 ...: the resource manager's escapes)
UVM_IOCTL_MAX = 0x1000           # /dev/nvidia-uvm: plain numbers 1, 2, 3 ... (UVM_IOCTL_BASE(i) = i)
UVM_INIT = 0x30000000            # UVM_INITIALIZE 0x30000001, UVM_DEINITIALIZE 0x30000002
SECCOMP_SET_MODE_FILTER = 1
# compute-sanitizer's injected library talks to its front end (in the same jail, which has no network but
# its own loopback) over TCP, and keeps files under /tmp and /dev/shm (the jail's own, empty, discarded).
_SANITIZER = """
socket connect bind listen accept accept4 getsockname getpeername getsockopt setsockopt shutdown
sendto recvfrom sendmsg recvmsg socketpair unlink unlinkat mkdir mkdirat ftruncate fchmod rename renameat
timerfd_create timerfd_settime timerfd_gettime
""".split()


def _cuda_filter(stage: int, arena: tuple[int, int], pid: int, sanitizer: bool):
    s = _lib()
    f = s.SyscallFilter(defaction=s.TRAP)
    lo, hi = arena
    for name in _ALWAYS + _CUDA_ALWAYS:
        if name not in ("mmap", "mprotect", "munmap", "mremap", "madvise"):
            f.add_rule(s.ALLOW, name)
    for name in ("tgkill", "tkill"):
        f.add_rule(s.ALLOW, name, s.Arg(0, s.EQ, pid))
    f.add_rule(s.ALLOW, "prlimit64", s.Arg(0, s.EQ, pid))
    f.add_rule(s.ALLOW, "prlimit64", s.Arg(0, s.EQ, 0))
    f.add_rule(s.ALLOW, "sched_setaffinity")  # the driver pins its threads by tid; the cell has its own PID space
    f.add_rule(s.ALLOW, "rt_sigaction", s.Arg(0, s.NE, SIGSYS))
    f.add_rule(s.ALLOW, "clone", s.Arg(0, s.MASKED_EQ, CLONE_THREAD, CLONE_THREAD))
    f.add_rule(s.ERRNO(errno.ENOSYS), "clone3")
    for option in (PR_SET_SECCOMP, PR_SET_NAME, PR_GET_NAME):
        f.add_rule(s.ALLOW, "prctl", s.Arg(0, s.EQ, option))
    f.add_rule(s.ALLOW, "seccomp", s.Arg(0, s.EQ, SECCOMP_SET_MODE_FILTER))  # the next stage, on every thread
    below, span, above = s.Arg(0, s.LT, lo - CUDA_SPAN), s.Arg(1, s.LE, CUDA_SPAN), s.Arg(0, s.GE, hi)
    for name in ("munmap", "mremap", "madvise"):
        f.add_rule(s.ALLOW, name, below, span)
        f.add_rule(s.ALLOW, name, above)
    fixed, notfixed = s.Arg(3, s.MASKED_EQ, MAP_FIXED, MAP_FIXED), s.Arg(3, s.MASKED_EQ, MAP_FIXED, 0)
    if stage < 3:
        f.add_rule(s.ALLOW, "mprotect", below, span)
        f.add_rule(s.ALLOW, "mprotect", above)
        f.add_rule(s.ALLOW, "mmap", notfixed)
        f.add_rule(s.ALLOW, "mmap", fixed, below, span)
        f.add_rule(s.ALLOW, "mmap", fixed, above)
        for name in _CUDA_LOADING:
            if name != "openat":
                f.add_rule(s.ALLOW, name)
    else:
        noexec = s.Arg(2, s.MASKED_EQ, PROT_EXEC, 0)
        f.add_rule(s.ALLOW, "mprotect", below, span, noexec)
        f.add_rule(s.ALLOW, "mprotect", above, noexec)
        f.add_rule(s.ALLOW, "mmap", noexec, notfixed)
        f.add_rule(s.ALLOW, "mmap", noexec, fixed, above)
        f.add_rule(s.ALLOW, "mmap", noexec, fixed, below, span)
    if stage == 1 or sanitizer:
        f.add_rule(s.ALLOW, "openat")
        f.add_rule(s.ALLOW, "ioctl")
    else:
        if stage == 2:
            f.add_rule(s.ALLOW, "openat", s.Arg(2, s.MASKED_EQ, O_ACCMODE | O_CREAT, 0))
        f.add_rule(s.ALLOW, "ioctl", s.Arg(1, s.MASKED_EQ, 0xFF00, NV_IOCTL_TYPE))
        f.add_rule(s.ALLOW, "ioctl", s.Arg(1, s.LT, UVM_IOCTL_MAX))
        f.add_rule(s.ALLOW, "ioctl", s.Arg(1, s.MASKED_EQ, 0xFFFF0000, UVM_INIT))
    if sanitizer:
        for name in _SANITIZER + _CUDA_LOADING:
            if name != "openat":
                f.add_rule(s.ALLOW, name)
        for name in ("symlink", "symlinkat"):  # the driver's /dev/char links (below): nothing to link into
            f.add_rule(s.ERRNO(errno.ENOENT), name)
    else:
        # cuInit probes for the MPS daemon: socket(AF_UNIX), then connect to /tmp/nvidia-mps/control. A refused
        # socket() makes cuInit fail (CUDA_ERROR_OPERATING_SYSTEM, seen on an H100), a missing daemon does not: in
        # stage 1 (the driver alone) the socket is made and every connect finds nothing there; later stages refuse
        # the socket itself. An unconnected socket can do nothing (no bind, send or socketpair in any stage).
        # It also binds an abstract Unix socket (cuda-uvmfd-NETNS-PID, for handing unified-memory descriptors to
        # processes that connect): the jail's network namespace is its own, so no one outside can reach it.
        if stage == 1:
            f.add_rule(s.ALLOW, "socket", s.Arg(0, s.EQ, AF_UNIX))
            for name in ("bind", "listen"):
                f.add_rule(s.ALLOW, name)
        else:
            f.add_rule(s.ERRNO(errno.EACCES), "socket", s.Arg(0, s.EQ, AF_UNIX))
        f.add_rule(s.ERRNO(errno.ENOENT), "connect")
        for name in ("setsockopt", "getsockopt", "getsockname"):  # on descriptors it has: no new reach
            f.add_rule(s.ALLOW, name)
        # It also links /dev/char/MAJOR:MINOR to each device node (unlink, then symlink): the jail's /dev has no
        # /dev/char, so both answer what the file system would, ENOENT, and nothing is written.
        for name in ("unlink", "unlinkat", "symlink", "symlinkat"):
            f.add_rule(s.ERRNO(errno.ENOENT), name)
    return f


def cuda_programs(arena: tuple[int, int], pid: int, sanitizer: bool = False) -> tuple[bytes, bytes, bytes]:
    """BPF of the CUDA cell's three stages for the process pid (as it sees itself) and an arena [lo, hi).
    sanitizer: the cell runs under compute-sanitizer, whose library in it needs sockets and files (inside a jail
    with no network and nothing of the host's files): opens, ioctls and socket calls are then allowed in every
    stage; exec, fork, ptrace and signals to others still are not."""
    return tuple(_bpf(_cuda_filter(stage, arena, pid, sanitizer)) for stage in (1, 2, 3))


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

