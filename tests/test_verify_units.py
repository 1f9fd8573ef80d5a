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
from ckls.verify.values import Buffer, arrange, family_values, landmarks, perturb, scalar_value, sentinel
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
    assert set(layouts(spec)) <= {c["layout"] for c in cases}
    assert {1, 2, 3, 4, 7} <= {c["threads"] for c in cases}
    assert set(spec.families) <= {c["family"] for c in cases}
    assert {"ties", "sorted", "reversed", "constant"} <= {c["pattern"] for c in cases}
    assert layouts(spec) == ["contig", "offset", "strided", "padded", "reversed", "transposed", "readonly"]
    assert size_classes(spec.sizes[0])[0] == 0
    # outputs are compared at the typical size and around 2^16, not only where testing is cheap
    tags = {c["tag"] for c in cases}
    assert {"shape typical", "shape max"} & tags and "shape 2^16" in tags
    assert any(c["sizes"]["cols"] == 65536 for c in cases)


@pytest.mark.parametrize("layout", ["contig", "offset", "strided", "padded", "reversed", "transposed"])
def test_buffer_layouts_and_guards(layout):
    b = Buffer((5, 7), np.float32, layout, 16, True)
    assert b.array.shape == (5, 7)
    misaligned = b.address % 64 != 0
    assert misaligned == (layout != "contig")
    b.array[...] = np.arange(35, dtype=np.float32).reshape(5, 7)
    assert b.guard_intact()
    b.base[b.lowest - 1] = 0.0  # a write just before the lowest element
    assert not b.guard_intact()
    if layout == "reversed":  # element [0, 0] is the highest address; strides walk down
        assert all(s < 0 for s in b.elem_strides) and b.base[b.offset] == 0.0 and b.base[b.lowest] == 34.0
    lo, hi = b.window
    assert hi - lo == b.span * 4
    if layout in ("strided", "padded", "transposed"):
        c = Buffer((5, 7), np.float32, layout, 16, True)
        flat_gap = {"strided": c.offset + 1, "padded": c.offset + 7, "transposed": c.offset + 5}[layout]
        c.base[flat_gap] = 2.0  # a write into the gap between elements
        assert not c.guard_intact()


def test_guards_differ_per_buffer():
    # an over-read of one buffer's guard written into another's guard must not look intact
    a, b = Buffer((4,), np.float32, "contig", 16, False, salt=0), Buffer((4,), np.float32, "contig", 16, False, salt=1)
    assert np.isnan(a.fill) and np.isnan(b.fill) and a.fill.tobytes() != b.fill.tobytes()
    b.base[b.offset + 4] = a.base[a.offset + 4]
    assert not b.guard_intact()
    i = Buffer((4,), np.int32, "contig", 16, False, salt=2)
    assert i.fill != sentinel(np.int32, 3)


def test_patterns_scalars_and_perturbation():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 50))
    assert np.all(np.diff(arrange(rng, x, "sorted"), axis=1) >= 0)
    assert np.all(np.diff(arrange(rng, x, "reversed"), axis=1) <= 0)
    assert len(np.unique(arrange(rng, x, "ties"))) <= 3
    assert all(len(set(r)) == 1 for r in arrange(rng, x, "constant"))
    picks = {scalar_value(rng, np.float32, (-3.0, 5.0), x) for _ in range(400)}
    assert {0.0, 1.0, -1.0, -3.0, 5.0} <= picks and all(-3.0 <= p <= 5.0 for p in picks)
    assert any(np.float32(p) in x.astype(np.float32) for p in picks)  # a value of the data itself
    y = perturb(rng, x, "normal")
    changed = np.flatnonzero(y != x)
    assert 1 <= changed.size <= 2 and not set(changed.tolist()) & landmarks(x.size)
    assert len(np.unique(arrange(rng, x, "wide") / x)) > 10  # magnitudes spread over decades


def test_poison_is_nan_and_families():
    b = Buffer((9,), np.float32, "contig", 16, False)
    b.poison()
    assert np.isnan(b.array).all() and np.isnan(sentinel(np.float32))
    b.poison(zero=True)
    assert not b.array.any()
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


def test_no_bubblewrap_is_an_error_not_a_weaker_judge(monkeypatch):
    from ckls.verify import jail
    monkeypatch.setattr(jail, "_PROBE", {"exe": None, "why": jail.INSTALL_HINT})
    spec = KernelSpec.from_dict(json.loads((ROOT / "relu" / "spec.json").read_text()))
    rep = verify(str(ROOT / "relu" / "original.py") + "::relu", str(ROOT / "relu" / "ok.c"), spec, budget="quick")
    assert rep.verdict == "ERROR" and "apt-get install bubblewrap" in rep.to_text(), rep.to_text()


def test_seccomp_programs_build_and_name_calls():
    from ckls.verify import seccomp
    one, two = seccomp.programs((1 << 44, (1 << 44) + (1 << 30)), 4321)
    assert len(one) % 8 == 0 and len(two) % 8 == 0 and one != two
    assert seccomp.syscall_name(59) == "execve"


def test_load_time_code_and_raw_syscalls_are_refused(tmp_path):
    bodies = {"ctor": "static int z;\n__attribute__((constructor)) static void c(void) { z = 1; }\nint k(void) { return z; }\n",
              "init": "void e(void) {}\n__asm__(\".section .init\\n call e@PLT\\n .previous\");\nvoid k(void) {}\n",
              "ifunc": "static void i(void) {}\nstatic void *r(void) { return i; }\nvoid k(void) __attribute__((ifunc(\"r\")));\n",
              "syscall": "void k(void) { __asm__ volatile(\"syscall\" ::: \"rcx\", \"r11\"); }\n",
              "weak": "__attribute__((weak)) int system(const char *);\nvoid k(void) { if (system) system(\"x\"); }\n"}
    for name, body in bodies.items():
        src = tmp_path / f"{name}.c"
        src.write_text(body)
        b = build_mod.build_c(src, tmp_path / name)
        assert not b.ok and b.forbidden_symbols, (name, b.log)
    ok = tmp_path / "ok.c"
    ok.write_text("void k(float *x) { x[0] = 1.0f; }\n")
    assert build_mod.build_c(ok, tmp_path / "ok").ok


def test_compiler_sees_no_files_outside_the_build(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-VALUE\n")
    src = tmp_path / "k.c"
    src.write_text(f'#include "{secret}"\nvoid k(void) {{}}\n')
    b = build_mod.build_c(src, tmp_path / "b")
    assert not b.ok and "TOPSECRET" not in b.log


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
    # a short kernel is timed net of the median round trip: the trips' spread is added before judging
    short = summarize([8e-6] * 5)
    assert hardware_flags(short, 800e3, None, "f32", cores=2)  # 100 GB/s as measured
    assert not hardware_flags(dict(short, trip_spread_s=20e-6), 800e3, None, "f32", cores=2)
    assert hardware_flags(dict(short, trip_spread_s=20e-6), 100e6, None, "f32", cores=2)  # still 3.6 TB/s
