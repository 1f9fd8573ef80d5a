"""The CUDA side of the judge: parsing compute-sanitizer's reports, the sanitizer plan, the launcher contract,
device buffer layouts, the GPU speed-of-light flags; and, where a GPU is present, that launch failures, illegal
addresses and hangs fail the candidate without hanging the judge."""
import json
import shutil
import subprocess

import numpy as np
import pytest

from ckls.verify import build as build_mod
from ckls.verify.bench import gpu_hardware_flags
from ckls.verify.cudadrv import _SCRIBBLE_PTX
from ckls.verify.fuzz import cuda_sanitizer_plan
from ckls.verify.run import Budget, verify
from ckls.verify.sandbox import Limits
from ckls.verify.spec import KernelSpec
from ckls.verify.values import Buffer
from kernels_corpus.corpus import ROOT

GPU = build_mod.gpu_present()
AXPY = ROOT / "axpy_cuda"

MEMCHECK_LOG = """\
========= COMPUTE-SANITIZER
some harness output
========= Invalid __global__ read of size 8 bytes
=========     at axpy_pairs(long, float, const float *, const float *, float *)+0x1f0 in bug_overread.cu:10
=========     by thread (0,0,0) in block (0,0,0)
=========     Access to 0x7f3c38800000 is out of bounds
=========
========= Invalid __global__ read of size 8 bytes
=========     at axpy_pairs(long, float, const float *, const float *, float *)+0x1f0 in bug_overread.cu:10
=========
========= ERROR SUMMARY: 2 errors
"""
RACECHECK_LOG = """\
========= COMPUTE-SANITIZER
========= Error: Race reported between Read access at softmax_rows(long, const float *, float *)+0xb20 in x.cu:32
=========     and Write access at softmax_rows(long, const float *, float *)+0x13e0 in x.cu:37 [52 hazards]
=========
========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)
"""
CLEAN_LOG = "========= COMPUTE-SANITIZER\nprogram output\n========= ERROR SUMMARY: 0 errors\n"


def test_sanitizer_finding_is_the_first_error_block():
    f = build_mod.sanitizer_finding(MEMCHECK_LOG)
    assert f.splitlines()[0] == "Invalid __global__ read of size 8 bytes"
    assert "bug_overread.cu:10" in f and "out of bounds" in f
    assert f.count("Invalid") == 1  # the first block only
    r = build_mod.sanitizer_finding(RACECHECK_LOG)
    assert r.startswith("Error: Race reported between Read access") and "52 hazards" in r
    assert build_mod.sanitizer_finding(CLEAN_LOG) == ""
    assert build_mod.sanitizer_finding("========= COMPUTE-SANITIZER\n") == ""  # still running, nothing found
    assert build_mod.sanitizer_finding("") == ""


def test_cuda_sanitizer_plan_is_small_and_has_tails():
    spec = KernelSpec.load(AXPY / "spec.json")
    for seed in (1, 2, 3):
        cases = cuda_sanitizer_plan(spec, seed)
        assert 3 <= len(cases) <= 6
        ns = [c["sizes"]["n"] for c in cases]
        assert 257 in ns  # tile + 1: one thread block and a tail
        assert any(n % 256 not in (0, 1) for n in ns)
        assert any(c["layout"] == "offset" for c in cases)
        assert all(0 <= n <= 100000 for n in ns)


def test_cuda_contract_in_spec_and_description():
    spec = KernelSpec.load(AXPY / "spec.json")
    d = spec.describe()
    assert d.startswith('extern "C" void axpy(int64_t n, float a, const float *x, const float *y, float *out);')
    assert "device pointers" in d and "stream 0" in d
    import ckls.verify.spec as spec_mod
    assert "DEVICE pointers" in spec_mod.__doc__ and "legacy default stream" in spec_mod.__doc__


@pytest.mark.parametrize("layout,pad", [("contig", 16), ("offset", 16), ("contig", 0), ("offset", 0)])
def test_device_buffer_alignment_is_counted_from_the_allocation(layout, pad):
    b = Buffer((37,), np.float32, layout, pad, False, device=True)
    byte_off = b.offset * 4
    assert byte_off % 64 == (4 if layout == "offset" else 0)
    if pad == 0:  # the sanitizer layout: the array ends where the allocation ends
        assert b.base.nbytes == byte_off + 37 * 4
    b.poison()
    assert b.guard_intact()


def test_gpu_speed_of_light_flags():
    dev = {"name": "H100", "peak_bytes_per_s": 3.35e12, "sms": 132, "clock_hz": 1.98e9}
    fast = {"median_s": 1e-6, "ci_lo_s": 1e-6, "ci_hi_s": 1e-6, "runs": 10}
    ok = {"median_s": 1e-4, "ci_lo_s": 1e-4, "ci_hi_s": 1e-4, "runs": 10}
    assert gpu_hardware_flags(ok, 12e6, 2e6, "f32", dev) == []
    flags = gpu_hardware_flags(fast, 12e6, 2e6, "f32", dev)
    assert len(flags) == 1 and "GB/s" in flags[0]
    assert any("TFLOP/s" in f for f in gpu_hardware_flags(fast, 1e3, 1e13, "f32", dev))


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas (CUDA toolkit) not installed")
def test_scribble_and_hold_ptx_assemble(tmp_path):
    src = tmp_path / "judge.ptx"
    src.write_bytes(_SCRIBBLE_PTX.rstrip(b"\x00"))
    p = subprocess.run(["ptxas", "-arch=sm_90", str(src), "-o", str(tmp_path / "judge.cubin")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


# ---- on a GPU only ---------------------------------------------------------------------------------------
AXPY_HEAD = """#include <stdint.h>
#include <cuda_runtime.h>
__global__ static void k(int64_t n, float a, const float *x, const float *y, float *out) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    %s
}
extern "C" void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    if (n <= 0) return;
    %s
}
"""
QUICK = Budget(hypothesis_examples=0, sanitizer=False, bench_s=0.0, shrink_tries=0)


def _judge(tmp_path, body, launch, timeout=30.0):
    src = tmp_path / "axpy.cu"
    src.write_text(AXPY_HEAD % (body, launch))
    spec = KernelSpec.load(AXPY / "spec.json")
    return verify(str(AXPY / "original.py") + "::axpy", str(src), spec, spec_path=str(AXPY / "spec.json"),
                  budget=QUICK, limits=Limits(request_timeout_s=timeout))


needs_gpu = pytest.mark.skipif(not GPU or shutil.which("nvcc") is None, reason="needs a CUDA GPU and nvcc")


@needs_gpu
def test_gpu_launch_failure_fails_the_candidate(tmp_path):
    # One block of n threads: an invalid launch beyond 1024, nothing runs, the poison stays.
    rep = _judge(tmp_path, "if (i < n) out[i] = a * x[i] + y[i];", "k<<<1, (unsigned)n>>>(n, a, x, y, out);")
    assert rep.verdict == "FAIL" and rep.failure.check == "wrong_result", rep.to_text()
    assert rep.failure.case["sizes"]["n"] > 1024


@needs_gpu
def test_gpu_illegal_address_fails_and_the_judge_recovers(tmp_path):
    rep = _judge(tmp_path, "if (i < n) out[i + (1LL << 40)] = a * x[i] + y[i];",
                 "k<<<(unsigned)((n + 255) / 256), 256>>>(n, a, x, y, out);")
    assert rep.verdict == "FAIL" and rep.failure.check == "cuda_error", rep.to_text()
    assert "ILLEGAL_ADDRESS" in rep.failure.detail or "illegal" in rep.failure.detail.lower()
    ok = _judge(tmp_path, "if (i < n) out[i] = a * x[i] + y[i];",
                "k<<<(unsigned)((n + 255) / 256), 256>>>(n, a, x, y, out);")
    assert ok.verdict == "PASS", ok.to_text()


@needs_gpu
def test_gpu_hang_is_a_timeout_not_a_hung_judge(tmp_path):
    rep = _judge(tmp_path, "if (i < n) { for (;;) __nanosleep(1000); }",
                 "k<<<(unsigned)((n + 255) / 256), 256>>>(n, a, x, y, out);", timeout=5.0)
    assert rep.verdict == "FAIL" and rep.failure.check == "timeout", rep.to_text()
    assert rep.seconds < 60


def test_corpus_specs_say_cuda():
    for d in ("axpy_cuda", "softmax_cuda", "dot_cuda"):
        assert json.loads((ROOT / d / "spec.json").read_text())["language"] == "cuda"
