"""The kernel task set: well-formed tasks, the agent's view of each, one reference kernel per task that the
judge PASSES (which proves its hidden checks can be passed) and one plausible first attempt with a common
mistake that it FAILS (which proves the checks bite). CUDA references compile; without a GPU the judge says
UNVERIFIED, never PASS.

Default run: the judge's full fixed edge-case plan on every C reference (no random cases, no sanitizer re-run);
`-m slow` adds the CI budget (12 Hypothesis cases and the ASan+UBSan re-run) and compiles every CUDA reference.
The seed is fresh each run and printed.
"""
from pathlib import Path

import ast
import random
import shutil

import pytest

from ckls.skills.tasks import default_tasks_dir, load_tasks
from ckls.verify.build import gpu_present
from ckls.verify.run import Budget, verify

TASKS_DIR = Path(__file__).resolve().parents[1] / "bench" / "kernel_tasks"
TASKS = load_tasks(TASKS_DIR)
SEED = random.SystemRandom().getrandbits(32)
PLAN_ONLY = Budget(hypothesis_examples=0, sanitizer=False, bench_s=0.0, shrink_tries=2)
KINDS = {"elementwise": "silu", "reduction": "l2norm", "softmax": "log_softmax", "layer norm": "layer_norm",
         "stencil": "blur5", "prefix sum": "prefix_sum", "small matmul": "matmul_small", "histogram": "histogram",
         "top-k": "topk", "gather": "gather_rows", "scatter": "scatter_add"}


def test_task_set_covers_the_kinds():
    names = {t.name for t in TASKS}
    assert len(TASKS) >= 12
    assert set(KINDS.values()) <= names
    assert all(t.reference_kernel("c") for t in TASKS)
    assert sum(t.reference_kernel("cuda") is not None for t in TASKS) >= 6


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_agent_view(task):
    """The agent gets the original function (runnable alone), the contract and the notes; not the vectorised
    version the benchmark uses, not the reference kernel."""
    kt = task.kernel_task("c")
    src = kt.source
    ns = {}
    exec(compile(src, task.name, "exec"), ns)
    assert callable(ns[task.func_name])
    tree = ast.parse(src)
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == [task.func_name]
    assert "numpy" not in [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert kt.notes and all(isinstance(n, str) and n for n in kt.notes)
    assert kt.spec.language == "c" and task.kernel_task("cuda").spec.language == "cuda"
    assert kt.ref == task.ref


def _judge(task, lang, budget):
    kernel = task.reference_kernel(lang)
    rep = verify(task.ref, str(kernel), task.spec_for(lang), spec_path=str(task.spec_path), budget=budget, seed=SEED)
    print(rep.to_text())
    return rep


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_reference_c_passes_the_plan(task):
    rep = _judge(task, "c", PLAN_ONLY)
    assert rep.verdict == "PASS", f"seed {SEED}\n{rep.to_text()}"


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_pitfall_fails(task):
    """pitfall.c names its mistake on its first line (missing tail, float accumulator, ignored strides, C's
    negative modulo, NaN rule, tie order...); the fixed plan alone must catch it."""
    kernel = task.folder / "pitfall.c"
    assert kernel.read_text().startswith("// Pitfall: ")
    rep = verify(task.ref, str(kernel), task.spec_for("c"), spec_path=str(task.spec_path), seed=SEED,
                 budget=Budget(hypothesis_examples=0, sanitizer=False, bench_s=0.0, shrink_tries=0))
    print(rep.to_text())
    assert rep.verdict == "FAIL", f"seed {SEED}\n{rep.to_text()}"


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_reference_c_passes_ci_budget(task):
    rep = _judge(task, "c", "ci")
    assert rep.verdict == "PASS", f"seed {SEED}\n{rep.to_text()}"


CUDA = [t for t in TASKS if t.reference_kernel("cuda")]
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) is not installed")


def _cuda_check(task):
    rep = _judge(task, "cuda", "ci")
    want = "PASS" if gpu_present() else "UNVERIFIED"
    assert rep.verdict == want, f"seed {SEED}\n{rep.to_text()}"
    assert all(b["ok"] for b in rep.builds)


@needs_nvcc
@pytest.mark.parametrize("task", CUDA[:1], ids=lambda t: t.name)
def test_reference_cuda_compiles(task):
    _cuda_check(task)


@pytest.mark.slow
@needs_nvcc
@pytest.mark.parametrize("task", CUDA[1:], ids=lambda t: t.name)
def test_reference_cuda_compiles_all(task):
    _cuda_check(task)


def test_the_task_set_is_found_by_default():
    """From a checkout or from an installed wheel (which carries it as ckls/skills/_tasks)."""
    d = default_tasks_dir()
    assert d is not None and {t.name for t in load_tasks(d)} == {t.name for t in TASKS}
