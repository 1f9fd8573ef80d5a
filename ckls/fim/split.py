"""Which files of a source tree are held out: a hash of each file's path (relative, '/'-separated) and a seed
decides, so the split does not depend on the order files are listed in, on other files being added or removed,
or on the files' contents changing. The fine-tuner excludes exactly these files from its training data."""
from __future__ import annotations

import hashlib
import os

from .corpus import EXTENSIONS

# directories that hold no source of the project itself
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".tox", ".nox", ".venv", "venv",
                       "env", "build", "dist", ".eggs", "site-packages", ".mypy_cache", ".pytest_cache"})
MAX_BYTES = 1_000_000


def source_files(repo: str | os.PathLike, extensions=None) -> list[str]:
    """Relative '/'-separated paths of the source files under repo (languages ckls completes with syntax),
    sorted; hidden and build directories, files over 1 MB and symlinks are left out."""
    exts = set(extensions) if extensions is not None else set(EXTENSIONS)
    root = os.fspath(repo)
    out: list[str] = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.startswith(".") and not x.endswith(".egg-info")]
        for name in files:
            if os.path.splitext(name)[1].lower() not in exts:
                continue
            p = os.path.join(d, name)
            if os.path.islink(p) or os.path.getsize(p) > MAX_BYTES:
                continue
            out.append(os.path.relpath(p, root).replace(os.sep, "/"))
    return sorted(out)


def file_hash(rel_path: str, seed: int) -> float:
    """A number in [0, 1) fixed by the path and the seed."""
    h = hashlib.sha256(f"{seed}\0{rel_path}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def split_files(repo: str | os.PathLike, fraction: float = 0.2, seed: int = 0,
                files: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(train, held_out) relative paths. A file is held out when its hash is below `fraction`; a tree with any
    files holds out at least one (the lowest hash), so a small repo still has something to measure."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"held-out fraction {fraction} is outside [0, 1]")
    files = source_files(repo) if files is None else sorted(files)
    keyed = [(file_hash(f, seed), f) for f in files]
    held = {f for h, f in keyed if h < fraction}
    if not held and keyed and fraction > 0:
        held.add(min(keyed)[1])
    return [f for f in files if f not in held], [f for f in files if f in held]


def held_out_files(repo: str | os.PathLike, fraction: float = 0.2, seed: int = 0) -> list[str]:
    """The held-out relative paths of repo's source files (see split_files)."""
    return split_files(repo, fraction, seed)[1]
