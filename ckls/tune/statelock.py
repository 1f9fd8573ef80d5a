"""One tuning round per state folder, across processes: the server's automatic rounds and `ckls tune` in a terminal
would otherwise resume the same checkpoint and overwrite each other's steps. An advisory lock on `state_dir/lock`
(flock on POSIX, a byte-range lock on Windows) held while a round runs; the kernel drops it when the process dies,
so a kill -9 leaves no stale lock. The holder's pid is written into the file for the message."""
from __future__ import annotations

import os

LOCK_NAME = "lock"


class Busy(RuntimeError):
    """Another process holds the state folder."""


def _try_lock(fd: int) -> bool:
    if os.name == "nt":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # per open file: a second open in this process conflicts too
    except BlockingIOError:
        return False
    return True


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        pid = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    return pid if pid.isdigit() else "unknown"


class StateLock:
    def __init__(self, state_dir: str):
        self.path = os.path.join(state_dir, LOCK_NAME)
        self.fd: int | None = None

    def acquire(self) -> "StateLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            pid = _holder(fd)
            os.close(fd)
            raise Busy(f"another ckls process (pid {pid}) is tuning with {os.path.dirname(self.path)}; "
                       "wait for its round to end or stop it (ckls.tune.stop, Ctrl-C)")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # closing drops the lock (flock and msvcrt alike)

    def __enter__(self) -> "StateLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder(state_dir: str) -> str | None:
    """The pid (as text) of the process tuning with state_dir now, else None."""
    path = os.path.join(state_dir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        return None if _try_lock(fd) else _holder(fd)
    finally:
        os.close(fd)
