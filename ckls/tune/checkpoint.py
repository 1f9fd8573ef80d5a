"""Atomic files: a crash (kill -9, power loss) leaves either the previous version or the new one, never a mix.
(ckls.atomic: temporary file in the same folder, fsync, rename over the target, fsync of the folder).

A checkpoint is one .npz: the adapter's parameters and optimizer moments as arrays, and a JSON `meta` (step
counter, round, data position, best held-out loss...) stored beside them in the same file, so the two can never
disagree."""
from __future__ import annotations

import io
import json
import os
import time
import zipfile
import zlib

import numpy as np

from ckls import atomic


def write_json(path: str | os.PathLike, obj) -> None:
    atomic.write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode())


class Damaged(ValueError):
    """A state file that exists but cannot be used; the message says why (for the user, short)."""


def read_json(path: str | os.PathLike, default=None, strict: bool = False):
    """The file's JSON, default when it is absent. An unreadable file is default too, or with strict raises
    Damaged (the tuning state: a damaged file is set aside with a word, never silently taken for absent)."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return default
    except (ValueError, RecursionError) as exc:  # (UnicodeDecodeError is a ValueError)
        if strict:
            raise Damaged(f"not readable JSON ({str(exc)[:120]})") from None
        return default
    except OSError as exc:
        if strict:
            raise Damaged(f"cannot be read ({exc.strerror})") from None
        return default


def set_aside(path: str | os.PathLike) -> str:
    """Renames a damaged file to <name>.corrupt-<time> beside it (kept for the user to look at, out of the next
    run's way); returns the new path."""
    path = os.fspath(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    new, n = f"{path}.corrupt-{stamp}", 1
    while os.path.exists(new):
        new, n = f"{path}.corrupt-{stamp}-{n}", n + 1
    atomic.replace(path, new)
    return new


def save(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> None:
    if "__meta__" in arrays:
        raise ValueError("'__meta__' is reserved")
    buf = io.BytesIO()
    payload = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    payload["__meta__"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    np.savez(buf, **payload)
    atomic.write_bytes(path, buf.getvalue())


def read_meta(path: str | os.PathLike) -> dict | None:
    """Only the meta of a checkpoint (cheap: the arrays stay on disk), or None."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as z:
            return json.loads(z["__meta__"].tobytes().decode()) if "__meta__" in z.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, zlib.error, RecursionError):
        return None


def load(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict] | None:
    """(arrays, meta), or None when there is no checkpoint; Damaged when there is one that cannot be read."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        return None
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise Damaged(f"not a readable checkpoint ({str(exc)[:120] or type(exc).__name__})") from None
    except ValueError:  # numpy's word for a file that is no .npz archive at all
        raise Damaged("not a readable checkpoint (no .npz archive)") from None
    except OSError as exc:
        raise Damaged(f"not a readable checkpoint ({exc.strerror or exc})") from None
    raw = arrays.pop("__meta__", None)
    if raw is None:
        raise Damaged("the checkpoint has no meta record")
    try:
        meta = json.loads(raw.tobytes().decode())
    except (ValueError, RecursionError) as exc:
        raise Damaged(f"the checkpoint's meta record is not JSON ({str(exc)[:120]})") from None
    if not isinstance(meta, dict):
        raise Damaged("the checkpoint's meta record is not an object")
    return arrays, meta
