"""Atomic files, the one way ckls replaces a file: a crash (kill -9, power loss) leaves either the previous version
or the new one, never a mix. Write a temporary file in the same folder, fsync it, rename it over the target, fsync
the folder (so the rename itself is durable). Every writer of models, adapters, checkpoints and state goes through
here. Imports nothing of ckls: any layer may use it."""
from __future__ import annotations

import os
import tempfile
from typing import Callable


def fsync_dir(folder: str | os.PathLike) -> None:
    """Makes a rename in `folder` durable; quiet where the filesystem refuses fsync on a directory (the rename is
    still atomic there)."""
    try:
        fd = os.open(os.fspath(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_with(path: str | os.PathLike, fill: Callable[[str], None], suffix: str = ".tmp",
               make_folder: bool = False) -> None:
    """Calls fill(tmp_path) to write the new file (by name: for writers that open it themselves), then fsyncs it,
    renames it over path and fsyncs the folder. On any error the temporary file is removed and path is untouched.
    make_folder: create a missing folder (else that is an OSError, as for open())."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if make_folder:
        os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckls-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def write_bytes(path: str | os.PathLike, data: bytes, make_folder: bool = True) -> None:
    """Replaces path's content with data, atomically (see write_with)."""

    def fill(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    write_with(path, fill, make_folder=make_folder)


def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Renames an already written and fsynced file over dst (same folder) and makes the rename durable."""
    os.replace(src, dst)
    fsync_dir(os.path.dirname(os.path.abspath(os.fspath(dst))))
