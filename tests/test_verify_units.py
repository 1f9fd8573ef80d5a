"""The judge's parts on their own: spec parsing, layouts and guards, comparison rules, builds, CUDA, CLI."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ckls.verify import build as build_mod
from ckls.verify.cli import main as cli_main
from ckls.verify.compare import mismatch, same_bits
from ckls.verify.fuzz import layouts, plan, size_classes
from ckls.verify.run import verify
from ckls.verify.spec import KernelSpec, SpecError, eval_expr
from ckls.verify.values import SENTINEL, Buffer, family_values
from kernels_corpus.corpus import ROOT

ROWSUM = json.loads((ROOT / "rowsum" / "spec.json").read_text())


def test_prototype_and_description():
    spec = KernelSpec.from_dict(ROWSUM)
    assert spec.c_prototype() == ("void row_sums(int64_t rows, int64_t cols, const float *x, int64_t x_s0, "
                                  "int64_t x_s1, float *out)")
    assert "any strides" in spec.describe()
    assert KernelSpec.from_dict(json.loads(spec.to_json())) == spec


@pytest.mark.parametrize("patch", [
    {"name": "not an identifier"},
    {"args": [{"name": "x", "shape": ["m"]}, {"name": "o", "role": "out", "shape": ["rows"]}]},
    {"args": [{"name": "x", "shape": ["__import__('os')"]}, {"name": "o", "role": "out"}]},
    {"args": [{"name": "x", "shape": ["rows"]}]},
    {"args": [{"name": "x", "shape": ["rows"]}, {"name": "o", "role": "out", "shape": ["cols"],
                                                  "may_alias": ["x"]}]},
    {"args": [{"name": "a", "kind": "scalar", "role": "out"}, {"name": "o", "role": "out"}]},
    {"families": ["weird"]},
])
def test_bad_specs_are_refused(patch):
    with pytest.raises(SpecError):
        KernelSpec.from_dict({**ROWSUM, **patch})


def test_expressions():
    assert eval_expr("(n+1)//2*m", {"n": 7, "m": 3}) == 12
    assert eval_expr("n % 0", {"n": 5}) == 0


def test_plan_covers_edge_shapes_layouts_and_threads():
    spec = KernelSpec.from_dict(ROWSUM)
    cases = plan(spec, 1)
    cols = {c["sizes"]["cols"] for c in cases}
    assert {0, 1, 7, 8, 9, 20000} <= cols and any(v in (16381, 65521) or v > 1000 for v in cols)
    assert {"contig", "offset", "strided", "transposed"} <= {c["layout"] for c in cases}
    assert {1, 2, 3, 4, 7} <= {c["threads"] for c in cases}
    assert set(spec.families) <= {c["family"] for c in cases}
    assert layouts(spec) == ["contig", "offset", "strided", "transposed"]
    assert size_classes(spec.sizes[0])[0] == 0


@pytest.mark.parametrize("layout", ["contig", "offset", "strided", "transposed"])
def test_buffer_layouts_and_guards(layout):
    b = Buffer((5, 7), np.float32, layout, 16, True)
    assert b.array.shape == (5, 7)
    misaligned = b.address % 64 != 0
    assert misaligned == (layout != "contig")
    b.array[...] = 1.0
    assert b.guard_intact()
    b.base[b.offset - 1] = 0.0  # a write just before the array
    assert not b.guard_intact()
    if layout in ("strided", "transposed"):
        c = Buffer((5, 7), np.float32, layout, 16, True)
        flat_gap = c.offset + 1 if layout == "strided" else c.offset + 5
        c.base[flat_gap] = 2.0  # a write into the gap between elements
        assert not c.guard_intact()


def test_poison_is_nan_and_families():
    b = Buffer((9,), np.float32, "contig", 16, False)
    b.poison()
    assert np.isnan(b.array).all() and np.isnan(SENTINEL[np.dtype(np.float32)])
    rng = np.random.default_rng(0)
    den = family_values(rng, "denormal", (1000,), np.float32)
    assert np.all(np.abs(den) < np.finfo(np.float32).tiny)
    sp = family_values(rng, "special", (1000,), np.float64)
    assert np.isnan(sp).any() and np.isinf(sp).any()
    assert np.abs(family_values(rng, "huge", (100,), np.float32)).max() > 1e15


def test_compare_rules():
    want = np.array([1.0, np.nan, np.inf, -2.0])
    assert mismatch(np.array([1.0, np.nan, np.inf, -2.0], np.float32), want, 1e-4, 1e-5) is None
    assert mismatch(np.array([1.0, 0.0, np.inf, -2.0], np.float32), want, 1e-4, 1e-5)["index"] == [1]
    assert mismatch(np.array([1.0, np.nan, -np.inf, -2.0], np.float32), want, 1e-4, 1e-5)["index"] == [2]
    assert mismatch(np.array([1.001, np.nan, np.inf, -2.0], np.float32), want, 1e-4, 1e-5)["index"] == [0]
    # tolerances are relative: an all-zero answer to tiny values fails
    tiny = np.full(8, 3e-30)
    assert mismatch(np.zeros(8, np.float32), tiny, 1e-4, 1e-5) is not None
    assert mismatch(np.array([5], np.int32), np.array([5]), 0, 0) is None
    assert same_bits(np.array([0.0]), np.array([-0.0])) is not None


def test_compile_errors_come_back_as_data(tmp_path):
    src = tmp_path / "k.c"
    src.write_text("void k(int n) {\n  return n +;\n}\n")
    b = build_mod.build_c(src, tmp_path / "b")
    assert not b.ok and b.so_path is None
    errs = [d for d in b.diagnostics if d.severity == "error"]
    assert errs and errs[0].line == 2 and errs[0].file.endswith("k.c")


def test_forbidden_imports(tmp_path):
    src = tmp_path / "k.c"
    src.write_text("#include <stdlib.h>\nvoid k(void) { system(\"true\"); }\n")
    b = build_mod.build_c(src, tmp_path / "b")
    assert not b.ok and b.forbidden_symbols == ["system"]


CUDA_OK = """
#include <cstdint>
__global__ void relu_k(int64_t n, const float *x, float *out) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) out[i] = x[i] < 0.0f ? 0.0f : x[i];
}
extern "C" void relu(int64_t n, const float *x, float *out) {
    if (n > 0) relu_k<<<(unsigned)((n + 255) / 256), 256>>>(n, x, out);
}
"""


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cuda_compiles_and_is_unverified_without_gpu(tmp_path):
    spec = KernelSpec.from_dict({**json.loads((ROOT / "relu" / "spec.json").read_text()), "language": "cuda"})
    good = tmp_path / "relu.cu"
    good.write_text(CUDA_OK)
    rep = verify(str(ROOT / "relu" / "original.py") + "::relu", str(good), spec)
    if build_mod.gpu_present():
        pytest.skip("a GPU is present")
    assert rep.verdict == "UNVERIFIED", rep.to_text()
    bad = tmp_path / "bad.cu"
    bad.write_text(CUDA_OK.replace("out[i] = x[i]", "out[i] = y[i]"))
    rep = verify(str(ROOT / "relu" / "original.py") + "::relu", str(bad), spec)
    assert rep.verdict == "FAIL" and rep.failure.check == "build"
    diags = rep.builds[0]["diagnostics"]
    assert any(d["severity"] == "error" and d["line"] == 5 for d in diags), rep.builds[0]["log"]


def test_cli_help_and_prototype(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["--help"])
    assert e.value.code == 0
    assert "path.py::function" in capsys.readouterr().out
    spec = str(ROOT / "rowsum" / "spec.json")
    assert cli_main(["x.py::f", "k.c", "--spec", spec, "--print-prototype"]) == 0
    assert "void row_sums(" in capsys.readouterr().out
    assert cli_main(["x.py::f", "nowhere/k.c"]) == 3


def test_cli_verdicts_and_repro(tmp_path):
    d = ROOT / "axpy"
    ref = f"{d / 'original.py'}::axpy"
    run = [sys.executable, "-m", "ckls.verify.cli", ref, "--budget", "quick", "-q", "--format", "json"]
    p = subprocess.run(run + [str(d / "ok_avx2.c")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["verdict"] == "PASS"
    p = subprocess.run(run + [str(d / "bug_tail.c")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1
    rep = json.loads(p.stdout)
    case = rep["failure"]["case"]
    assert case["sizes"]["n"] % 8 and "--case" in rep["repro"]
    # the printed case reproduces the failure on its own
    p = subprocess.run(run[:-2] + ["--format", "text", str(d / "bug_tail.c"), "--case", json.dumps(case)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "wrong_result" in p.stdout


def test_bench_statistics_and_hardware_flag():
    from ckls.verify.bench import hardware_flags, speedup, summarize
    k = summarize([1e-3, 1.1e-3, 0.9e-3, 1e-3, 1.05e-3])
    assert k["ci_lo_s"] <= k["median_s"] <= k["ci_hi_s"] and k["runs"] == 5
    o = summarize([1e-1] * 5)
    sp = speedup(o, k)
    assert sp["lo"] <= sp["x"] <= sp["hi"] and 90 < sp["x"] < 110
    # 100 MB in 1 ms is 100 GB/s: beyond this machine, flagged; 1 MB in 1 ms is fine
    assert hardware_flags(k, 100e6, None, "f32", cores=2)
    assert not hardware_flags(k, 1e6, None, "f32", cores=2)
    assert hardware_flags(k, 1e6, 1e12, "f32", cores=2)  # 1 PFLOP/s on two cores
