"""Applying a kernel: the files and the edit, the dispatch (kernel when the inputs fit, the original otherwise),
the generated pytest passing on its own, the LSP WorkspaceEdit, and refusal without PASS."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ckls.kernels.apply import ApplyError, apply_inserts, plan_apply, Insert
from ckls.kernels.task import draft_task
from kernels_fixtures import AXPY_OK, axpy_workspace  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent


def _task(ws):
    return draft_task(str(ws / "ops.py"), name="axpy", root=str(ws)).task()


def test_refused_without_pass_unless_forced(axpy_workspace):
    t = _task(axpy_workspace)
    for verdict in ("FAIL", "UNVERIFIED", None):
        with pytest.raises(ApplyError, match="not PASS"):
            plan_apply(t, AXPY_OK, "c", verdict=verdict)
    plan = plan_apply(t, AXPY_OK, "c", verdict="FAIL", force=True)
    assert "APPLIED WITHOUT PASS" in plan.creates[str(axpy_workspace / "ops_axpy_ckls.py")]


def test_applied_kernel_dispatches_and_the_generated_test_passes(axpy_workspace, tmp_path, monkeypatch):
    ws = axpy_workspace
    t = _task(ws)
    assert t.spec.c_prototype() == "void axpy(int64_t n, float a, const float *x, const float *y, float *out)"
    written = plan_apply(t, AXPY_OK, "c", verdict="PASS").write()
    assert sorted(Path(p).name for p in written) == ["ops.py", "ops_axpy_ckls.c", "ops_axpy_ckls.py",
                                                    "ops_axpy_ckls.spec.json", "test_ops_axpy_ckls.py"]
    text = (ws / "ops.py").read_text()
    assert "@_ckls_kernel_axpy\ndef axpy(a, x, y):" in text and "axpy_reference = axpy.__wrapped__" in text
    assert "    for i in range(len(x)):\n        out[i] = a * x[i] + y[i]" in text  # the original is untouched
    env = dict(os.environ, PYTHONPATH=str(ROOT), CKLS_KERNEL_CACHE=str(tmp_path / "cache"))
    probe = ("import numpy as np, ops\n"
             "x = np.arange(7, dtype=np.float32); y = np.ones(7, dtype=np.float32)\n"
             "print(ops.axpy(2.0, x, y).tolist(), ops.axpy.kernel_calls)\n"
             "print(ops.axpy(2.0, x.astype(np.float64), y).tolist(), ops.axpy.kernel_calls)\n"  # f64: fallback
             "print(ops.axpy(2.0, x, y[:3]) is None, ops.axpy.kernel_calls)\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ws, env=env, capture_output=True, text=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "[1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0] 1", out.stderr
    assert lines[1] == "[1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0] 1"
    # mismatched lengths are not the contract: the original runs (and raises, as it always did)
    assert "IndexError" in out.stderr
    # with CKLS_KERNELS=0 the original runs
    off = subprocess.run([sys.executable, "-c", probe.split("print(ops.axpy(2.0, x.astype")[0]], cwd=ws,
                         env=dict(env, CKLS_KERNELS="0"), capture_output=True, text=True)
    assert off.stdout.strip().endswith(" 0"), off.stderr
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_ops_axpy_ckls.py",
                          "test_ops.py"], cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "3 passed" in res.stdout


def test_generated_test_fails_for_a_wrong_kernel(axpy_workspace, tmp_path):
    ws = axpy_workspace
    wrong = AXPY_OK.replace("i < n;", "i + 1 < n;")
    plan_apply(_task(ws), wrong, "c", verdict="FAIL", force=True).write()
    env = dict(os.environ, PYTHONPATH=str(ROOT), CKLS_KERNEL_CACHE=str(tmp_path / "cache"))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                          "test_ops_axpy_ckls.py::test_axpy_kernel_passes_ckls_verify"], cwd=ws, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "wrong_result" in res.stdout


def test_workspace_edit_matches_the_written_files(axpy_workspace):
    ws = axpy_workspace
    plan = plan_apply(_task(ws), AXPY_OK, "c", verdict="PASS")
    edit = plan.workspace_edit()
    changes = edit["documentChanges"]
    creates = [c["uri"] for c in changes if c.get("kind") == "create"]
    assert sorted(Path(u).name for u in creates) == ["ops_axpy_ckls.c", "ops_axpy_ckls.py",
                                                     "ops_axpy_ckls.spec.json", "test_ops_axpy_ckls.py"]
    # replaying the text edits the way an editor does gives the same ops.py as plan.write()
    ops_uri = (ws / "ops.py").resolve().as_uri()
    (doc_edit,) = [c for c in changes if c.get("textDocument", {}).get("uri") == ops_uri]
    replay = apply_inserts((ws / "ops.py").read_text(),
                           [Insert(e["range"]["start"]["line"], e["newText"]) for e in doc_edit["edits"]])
    plan.write()
    assert replay == (ws / "ops.py").read_text()
    from lsprotocol import converters, types
    ws_edit = converters.get_converter().structure(edit, types.WorkspaceEdit)  # a valid LSP WorkspaceEdit
    assert len(ws_edit.document_changes) == len(changes)


def test_apply_twice_does_not_stack_decorators(axpy_workspace):
    ws = axpy_workspace
    plan_apply(_task(ws), AXPY_OK, "c", verdict="PASS").write()
    once = (ws / "ops.py").read_text()
    plan = plan_apply(_task(ws), AXPY_OK, "c", verdict="PASS")
    assert str(ws / "ops.py") not in plan.edits
    plan.write()
    assert (ws / "ops.py").read_text() == once


@pytest.mark.parametrize("name,kernel", [("rowsum", "ok_omp.c"), ("dot", "ok.c")])
def test_wrapper_handles_2d_views_and_0d_outputs(tmp_path, monkeypatch, name, kernel):
    """Row sums (2-D input with strides, OpenMP) and dot (a 0-d output returned as a scalar)."""
    import importlib
    import json
    import shutil

    import numpy as np

    src = CORPUS / name
    ws = tmp_path / name
    ws.mkdir()
    stem = f"orig_{name}"  # one module name per case: imports are cached per process
    shutil.copy(src / "original.py", ws / f"{stem}.py")
    spec = json.loads((src / "spec.json").read_text())
    func = spec["name"]
    (ws / f"{stem}.{func}.spec.json").write_text(json.dumps(spec))
    task = draft_task(str(ws / f"{stem}.py"), name=func).task()
    plan_apply(task, (src / kernel).read_text(), "c", verdict="PASS").write()
    monkeypatch.setenv("CKLS_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(ws))
    mod = importlib.import_module(stem)
    fn = getattr(mod, func)
    rng = np.random.default_rng(7)
    if name == "rowsum":
        x = rng.standard_normal((37, 19)).astype(np.float32)
        for arg in (x, x.T.copy().T, x[:, ::2]):  # contiguous, column-major, strided
            got = fn(arg)
            assert got.dtype == np.float32 and got.shape == (arg.shape[0],)
            np.testing.assert_allclose(got, arg.astype(np.float64).sum(axis=1), rtol=1e-5, atol=1e-5)
        assert fn.kernel_calls == 3
    else:
        x, y = rng.standard_normal(1001), rng.standard_normal(1001)
        got = fn(x, y)
        assert np.ndim(got) == 0 and fn.kernel_calls == 1
        assert abs(float(got) - float(x @ y)) < 1e-9 * max(1.0, abs(float(x @ y)))
        assert fn(list(x), list(y)) == pytest.approx(float(x @ y)) and fn.kernel_calls == 1  # lists: original


CORPUS = ROOT / "tests" / "kernels_corpus"


@pytest.mark.skipif(__import__("shutil").which("nvcc") is None, reason="nvcc not installed")
def test_cuda_apply_host_shim_compiles_and_falls_back_without_gpu(axpy_workspace, tmp_path, monkeypatch):
    """CUDA: the wrapper adds host copies around the launcher (it takes device pointers); the pair compiles
    with nvcc, and without a GPU the original answers."""
    import importlib
    import subprocess as sp

    import numpy as np

    from ckls.verify.build import gpu_present

    ws = axpy_workspace
    md = (ROOT / "skills/cuda-kernels/references/launcher.md").read_text()
    cu = md.split("```cuda\n")[1].split("```")[0]
    plan_apply(_task(ws), cu, "cuda", verdict="UNVERIFIED", force=True).write()
    monkeypatch.syspath_prepend(str(ws))
    monkeypatch.setenv("CKLS_KERNEL_CACHE", str(tmp_path / "cache"))
    w = importlib.import_module("ops_axpy_ckls")
    assert 'extern "C" int ckls_host_axpy(int64_t n, float a, const float *x' in w.HOST_SHIM
    (tmp_path / "shim.cu").write_text(w.HOST_SHIM)
    r = sp.run(["nvcc", "-O3", "-shared", "-Xcompiler", "-fPIC", "-o", str(tmp_path / "k.so"), w.SOURCE,
                str(tmp_path / "shim.cu")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ops = importlib.import_module("ops")
    x, y = np.arange(9, dtype=np.float32), np.ones(9, dtype=np.float32)
    np.testing.assert_allclose(ops.axpy(2.0, x, y), 2 * x + 1)
    if not gpu_present():
        assert "no GPU" in w.build_error() and ops.axpy.kernel_calls == 0
    else:
        assert ops.axpy.kernel_calls == 1
