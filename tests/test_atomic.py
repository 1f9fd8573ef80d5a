"""ckls.atomic, the one atomic write: the new file is fsynced before the rename and the folder after it; a failed
write leaves the old file and no temporary behind."""
import os

import pytest

from ckls import atomic


def test_write_fsyncs_file_then_renames_then_fsyncs_folder(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    target.write_text("old")
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", "dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"))
        real_fsync(fd)

    def replace(a, b):
        calls.append(("replace", os.path.basename(b)))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert calls == [("fsync", "file"), ("replace", "state.json"), ("fsync", "dir")]
    assert os.listdir(tmp_path) == ["state.json"]


def test_failed_fill_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.gguf"
    target.write_bytes(b"old")

    def fill(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic.write_with(target, fill, suffix=".gguf.tmp")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.gguf"]


def test_folder_made_only_when_asked(tmp_path):
    with pytest.raises(OSError):
        atomic.write_with(tmp_path / "no" / "x", lambda tmp: None)
    atomic.write_bytes(tmp_path / "new" / "x", b"1")
    assert (tmp_path / "new" / "x").read_bytes() == b"1"
