"""Every planted bug FAILS, every correct kernel PASSES; and the same corpus under a KernelBench-style check.

The corpus runs with the "ci" budget: the full fixed edge-case plan, 12 Hypothesis cases (instead of 60), the
ASan+UBSan re-run (CUDA: compute-sanitizer's four tools), no benchmark. The seed is fresh each run and
printed; a failure prints its repro command. CUDA entries are judged on the GPU where one is present
(PASS/FAIL as for C); elsewhere they must compile with nvcc and be judged UNVERIFIED, never PASS.
"""
import random
import shutil

import pytest

from ckls.verify.build import NVCC, gpu_present
from ckls.verify.naive import naive_check
from ckls.verify.run import Budget, verify
from ckls.verify.spec import KernelSpec
from kernels_corpus.corpus import entries, judge_table

ENTRIES = entries()
GPU = gpu_present()
SEED = random.SystemRandom().getrandbits(32)
STRONG = {}  # entry id -> verdict text, filled by test_corpus_verdict, reused by the table


def test_corpus_covers_every_bug_class():
    classes = {e.bug for e in ENTRIES if e.bug}
    need = {"tail", "alignment", "aliasing", "strides", "input mutation", "output caching/reuse", "OpenMP race",
            "NaN handling", "precision drop", "hard-coded shape", "fallback to the reference", "timing trick"}
    assert need <= classes, need - classes
    assert sum(e.expect == "PASS" for e in ENTRIES) >= 6


def test_cuda_corpus_covers_gpu_bug_classes():
    cuda = [e for e in ENTRIES if e.language == "cuda"]
    need = {"tail", "hard-coded grid", "shared-memory race", "uninitialised shared memory",
            "reduction assumes a power-of-two block", "precision drop", "out-of-bounds read",
            "returns before the kernel ends", "timing trick", "barrier in divergent code"}
    assert need <= {e.bug for e in cuda}, need - {e.bug for e in cuda}
    assert len({e.folder for e in cuda if not e.bug}) >= 3


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_corpus_verdict(entry):
    if entry.language == "cuda" and not shutil.which(NVCC):
        pytest.skip("nvcc is not installed: CUDA candidates cannot even be compiled here")
    expect = entry.expect if entry.language == "c" or GPU else "UNVERIFIED"
    spec = KernelSpec.load(entry.spec_path)
    rep = verify(entry.ref, str(entry.kernel), spec, spec_path=str(entry.spec_path), budget="ci", seed=SEED)
    print(rep.to_text())
    STRONG[entry.id] = rep.verdict + (f" ({rep.failure.check})" if rep.failure else "")
    assert rep.verdict == expect, f"seed {SEED}\n{rep.to_text()}"
    if expect == "UNVERIFIED":
        assert [b["ok"] for b in rep.builds] == [True], rep.to_text()  # compiled, but never run


def test_naive_check_lets_planted_bugs_through():
    judged = []
    for e in (e for e in ENTRIES if e.language == "c"):  # the naive check builds and runs C only
        spec = KernelSpec.load(e.spec_path)
        strong = STRONG.get(e.id)
        if strong is None:  # run alone: the fixed plan and the sanitizer re-run, no random cases
            rep = verify(e.ref, str(e.kernel), spec, spec_path=str(e.spec_path), seed=SEED,
                         budget=Budget(hypothesis_examples=0, sanitizer=True, bench_s=0.0, shrink_tries=0))
            strong = rep.verdict + (f" ({rep.failure.check})" if rep.failure else "")
        judged.append((e, strong, naive_check(e.ref, str(e.kernel), spec, seed=SEED)))
    print(f"\nseed {SEED}\n" + judge_table(judged))
    let_through = [e.id for e, _, n in judged if e.bug and n == "PASS"]
    assert len(let_through) >= 5, let_through
    for e, strong, naive in judged:
        if not e.bug:
            assert naive == "PASS", e.id  # the naive check is weak, not wrong
        else:
            assert strong.startswith("FAIL"), (e.id, strong)
