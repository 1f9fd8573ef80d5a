"""Files the judge builds for itself (the cell for a contract, the compiler's baseline), kept between runs under
$XDG_CACHE_HOME/ckls/verify (default ~/.cache/ckls/verify), keyed by everything they are built from. A candidate
is never cached: it is compiled afresh each time."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ckls" / "verify"


def key(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def compiler_id(cc: str) -> str:
    """The compiler's own description (a new compiler gives new keys)."""
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return cc


def fetch(name: str, dest: Path) -> bool:
    """Copy a cached file to dest; False when there is none (or the cache cannot be read)."""
    src = folder() / name
    try:
        shutil.copyfile(src, dest)
        shutil.copymode(src, dest)
        return True
    except OSError:
        return False


def store(name: str, src: Path) -> None:
    """Keep src under name (atomically: a half-written entry is never seen); a cache that cannot be written is
    only slower."""
    try:
        d = folder()
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
        os.close(fd)
        shutil.copyfile(src, tmp)
        shutil.copymode(src, tmp)
        os.replace(tmp, d / name)
    except OSError:
        pass


def load_json(name: str):
    try:
        return json.loads((folder() / name).read_text())
    except (OSError, ValueError):
        return None


def store_json(name: str, value) -> None:
    with tempfile.NamedTemporaryFile("w", delete=False, suffix=".json") as f:
        json.dump(value, f)
    store(name, Path(f.name))
    os.unlink(f.name)
