"""Training corpus from the source files this machine already has.

Sources: the Python standard library (PSF-2.0; each top-level module is its own unit for the split) and every
installed distribution whose metadata names a permissive licence (see licences.py). Files are the ones the
distribution's RECORD lists with a source extension. Filters drop unreadable, tiny, huge, generated and
minified files; dedup.py removes exact and near duplicates; whole packages are held out for evaluation.

Output (in `out`): train.jsonl, heldout.jsonl (one {"pkg","path","lang","text"} per line) and manifest.json
(every package seen: version, licence and where it came from, split, files, bytes, later tokens).
"""
from __future__ import annotations

import importlib.metadata as md
import json
import os
import platform
import site
import sys
import sysconfig
import zlib
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from ckls import atomic
from ckls.fim import dedup
from ckls.fim.corpus import EXTENSIONS, MAX_BYTES, MIN_BYTES, load_file

from . import licences

LANGS = EXTENSIONS


@dataclass
class Package:
    name: str
    version: str
    licence: str | None
    licence_source: str
    files: list[str] = field(default_factory=list)
    split: str = "excluded"
    n_files: int = 0
    bytes: int = 0
    tokens: int = 0
    dropped: dict = field(default_factory=dict)


def default_site_dirs() -> list[Path]:
    dirs = list(site.getsitepackages()) + [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    if site.ENABLE_USER_SITE and site.getusersitepackages():
        dirs.append(site.getusersitepackages())
    seen, out = set(), []
    for d in dirs:
        p = Path(d).resolve()
        if p.is_dir() and p not in seen:
            seen.add(p)
            out.append(p)
    return out


def stdlib_packages(stdlib: Path | None = None) -> list[Package]:
    stdlib = Path(stdlib or sysconfig.get_paths()["stdlib"]).resolve()
    units: dict[str, Package] = {}
    ver = platform.python_version()
    for root, dirs, files in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "dist-packages", "__pycache__"))
        rel = Path(root).relative_to(stdlib)
        for f in sorted(files):
            if Path(f).suffix not in LANGS:
                continue
            top = rel.parts[0] if rel.parts else Path(f).stem
            name = f"stdlib/{top}"
            pkg = units.setdefault(name, Package(name, ver, "PSF-2.0", "CPython standard library"))
            pkg.files.append(str(Path(root) / f))
    return list(units.values())


def site_packages(dirs: list[Path] | None = None) -> list[Package]:
    out: dict[str, Package] = {}
    for d in dirs if dirs is not None else default_site_dirs():
        for dist in md.distributions(path=[str(d)]):
            name = (dist.metadata.get("Name") or "").strip()
            if not name or name.lower() in out:
                continue
            spdx, source = licences.from_metadata(dist.metadata)
            pkg = Package(name.lower(), dist.version or "", spdx, source)
            for f in dist.files or []:
                if Path(str(f)).suffix in LANGS:
                    p = Path(dist.locate_file(f))
                    if p.is_file():
                        pkg.files.append(str(p))
            pkg.files.sort()
            out[pkg.name] = pkg
    return list(out.values())


def choose_heldout(pkgs: list[Package], frac: float, names: list[str] | None = None) -> set[str]:
    """Held-out packages: the named ones, else small packages in a fixed hash order until `frac` of the bytes."""
    if names:
        return set(names)
    total = sum(p.bytes for p in pkgs) or 1
    cand = sorted((p for p in pkgs if 0 < p.bytes <= 0.01 * total), key=lambda p: zlib.crc32(p.name.encode()))
    out, got = set(), 0
    for p in cand:
        if got >= frac * total:
            break
        out.add(p.name)
        got += p.bytes
    return out


def build(out: str | Path, stdlib: Path | None = None, site_dirs: list[Path] | None = None,
          heldout_frac: float = 0.02, heldout: list[str] | None = None, workers: int | None = None,
          max_files: int | None = None, log=print) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pkgs = stdlib_packages(stdlib) + site_packages(site_dirs)
    kept = [p for p in pkgs if p.licence]
    for p in pkgs:
        if not p.licence:
            p.dropped["licence"] = len(p.files)
    log(f"corpus: {len(pkgs)} packages, {len(kept)} with a permissive licence, "
        f"{sum(len(p.files) for p in kept)} candidate files")
    jobs = [(p, f) for p in sorted(kept, key=lambda p: p.name) for f in p.files]
    if max_files:
        jobs = jobs[:max_files]
    with Pool(workers or os.cpu_count()) as pool:
        loaded = pool.map(load_file, [f for _, f in jobs], chunksize=64)
    docs, sigs, seen = [], [], set()
    for (p, f), (text, sig, why) in zip(jobs, loaded):
        if text is None:
            p.dropped[why] = p.dropped.get(why, 0) + 1
            continue
        key = dedup.exact_key(text)
        if key in seen:
            p.dropped["exact duplicate"] = p.dropped.get("exact duplicate", 0) + 1
            continue
        seen.add(key)
        docs.append((p, f, text))
        sigs.append(sig)
    keep = dedup.near_duplicates(np.stack(sigs)) if sigs else np.zeros(0, bool)
    final = []
    for (p, f, text), k in zip(docs, keep):
        if not k:
            p.dropped["near duplicate"] = p.dropped.get("near duplicate", 0) + 1
            continue
        p.n_files += 1
        p.bytes += len(text.encode())
        final.append((p, f, text))
    held = choose_heldout([p for p in kept if p.bytes], heldout_frac, heldout)
    for p in kept:
        p.split = ("heldout" if p.name in held else "train") if p.bytes else "empty"
    counts = {"train": [0, 0], "heldout": [0, 0]}
    with open(out / "train.jsonl", "w") as ft, open(out / "heldout.jsonl", "w") as fh:
        for p, f, text in final:
            rec = {"pkg": p.name, "path": _relpath(f), "lang": LANGS[Path(f).suffix], "text": text}
            (fh if p.split == "heldout" else ft).write(json.dumps(rec) + "\n")
            counts[p.split][0] += 1
            counts[p.split][1] += len(text.encode())
    manifest = {
        "python": sys.version.split()[0],
        "filters": {"min_bytes": MIN_BYTES, "max_bytes": MAX_BYTES, "max_line": 1000, "max_mean_line": 100,
                    "min_alnum": 0.25, "near_duplicate_jaccard": dedup.NEAR},
        "files": {k: v[0] for k, v in counts.items()},
        "bytes": {k: v[1] for k, v in counts.items()},
        "packages": [_pkg_record(p) for p in sorted(pkgs, key=lambda p: p.name)],
    }
    write_manifest(out / "manifest.json", manifest)
    log(f"corpus: train {counts['train'][0]} files / {counts['train'][1] / 1e6:.1f} MB, "
        f"held out {counts['heldout'][0]} files / {counts['heldout'][1] / 1e6:.1f} MB in {len(held)} packages")
    return manifest


def _relpath(f: str) -> str:
    parts = Path(f).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1:])
    for i, part in enumerate(parts):
        if part.startswith("python3"):
            return "/".join(parts[i + 1:])
    return "/".join(parts[-3:])


def _pkg_record(p: Package) -> dict:
    d = asdict(p)
    d.pop("files")
    return d


def write_manifest(path: Path, manifest: dict) -> None:
    atomic.write_bytes(path, json.dumps(manifest, indent=1).encode(), make_folder=False)


def read_docs(path: str | Path):
    with open(path) as f:
        for line in f:
            yield json.loads(line)
