"""Atomic files: a crash (kill -9, power loss) leaves either the previous version or the new one, never a mix.
Write to a temporary file in the same folder, fsync it, rename it over the target, fsync the folder.

A checkpoint is one .npz: the adapter's parameters and optimizer moments as arrays, and a JSON `meta` (step
counter, round, data position, best held-out loss...) stored beside them in the same file, so the two can never
disagree."""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile

import numpy as np


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckls-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)


def write_json(path: str | os.PathLike, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def read_json(path: str | os.PathLike, default=None):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return default
    except ValueError:  # unreadable: treat as absent rather than crash the server
        return default


def save(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> None:
    if "__meta__" in arrays:
        raise ValueError("'__meta__' is reserved")
    buf = io.BytesIO()
    payload = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    payload["__meta__"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    np.savez(buf, **payload)
    atomic_write(path, buf.getvalue())


def read_meta(path: str | os.PathLike) -> dict | None:
    """Only the meta of a checkpoint (cheap: the arrays stay on disk), or None."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as z:
            return json.loads(z["__meta__"].tobytes().decode()) if "__meta__" in z.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def load(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict] | None:
    """(arrays, meta), or None when there is no checkpoint or it cannot be read (then training starts over)."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    raw = arrays.pop("__meta__", None)
    if raw is None:
        return None
    try:
        meta = json.loads(raw.tobytes().decode())
    except ValueError:
        return None
    return arrays, meta
