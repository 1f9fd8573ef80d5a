"""Fixtures of the kernel-command tests: the axpy task of the verifier's corpus, and a workspace copy of it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ckls.kernels.task import draft_task

CORPUS = Path(__file__).resolve().parent / "kernels_corpus"
AXPY_OK = (CORPUS / "axpy" / "ok_scalar.c").read_text()


@pytest.fixture
def axpy_task():
    d = draft_task(str(CORPUS / "axpy" / "original.py"), name="axpy", spec_path=str(CORPUS / "axpy" / "spec.json"))
    return d.task()


@pytest.fixture
def axpy_workspace(tmp_path) -> Path:
    """A project with ops.py (axpy as a Python loop) and a test that calls it with float32 arrays."""
    ws = tmp_path / "proj"
    ws.mkdir()
    shutil.copy(CORPUS / "axpy" / "original.py", ws / "ops.py")
    (ws / "test_ops.py").write_text(
        "import numpy as np\nfrom ops import axpy\n\n\ndef test_axpy():\n"
        "    x = np.arange(10, dtype=np.float32)\n    y = np.ones(10, dtype=np.float32)\n"
        "    assert axpy(2.0, x, y)[3] == 7.0\n")
    return ws
