"""What a new user reads from the CLI (issue 22): the model each command uses is named, `--help` lists only the
flags that apply, the tuning bar agrees with its step count, `ckls kernel` says what is missing before it asks
anything and reads the float type from the docstring, and a missing model names the flag to pass."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ckls(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT, **(env or {})}
    p = subprocess.run([sys.executable, "-m", "ckls", *args], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_bench_runtime_names_the_model():
    p = ckls("bench", "runtime", "-t", "1", "--repeats", "1", "--prompt-tokens", "8", "--gen-tokens", "2")
    assert p.returncode == 0 and "model None" not in p.stdout and "default.gguf (built in)" in p.stdout, p.stdout


def test_model_info_without_a_path_is_the_built_in_model():
    p = ckls("model", "info")
    assert p.returncode == 0 and "the built-in model" in p.stdout and "architecture" in p.stdout, p.stdout


@pytest.mark.parametrize("cmd", [["complete"], ["eval", "completion"]])
def test_help_lists_only_flags_that_apply(cmd):
    text = ckls(*cmd, "--help").stdout
    for flag in ("--model", "--threads", "--max-tokens", "--latency-ms", "--prefix-tokens"):
        assert flag in text, flag
    for flag in ("--debounce-ms", "--tune-rank", "--tune-enabled", "--prefetch", "--telemetry", "--log-file",
                 "--disabled-languages", "--prefill-idle-ms"):
        assert flag not in text, flag


def test_missing_model_names_the_cli_flag_not_the_editor_setting(tmp_path):
    src = tmp_path / "a.py"
    src.write_text("x = 1\n")
    p = ckls("complete", str(src), "--line", "1", "--col", "1", "--model", str(tmp_path / "none.gguf"))
    assert p.returncode == 1 and "--model" in p.stderr and "ckls.modelPath" not in p.stderr, p.stderr


def test_tune_bar_agrees_with_its_step_count():
    from ckls.tune.cli import Bar
    from ckls.tune.loop import Progress

    out = io.StringIO()
    bar = Bar(stream=out, width=20, every_step=True)
    bar(Progress("training", 23, 1356, fraction=1.0))  # the time budget is spent, 23 of 1356 steps done
    line = out.getvalue()
    assert line.startswith("[" + "-" * 20 + "]") and "step 23/1356" in line and "time budget 100% used" in line
    out.truncate(0), out.seek(0)
    bar(Progress("training", 678, 1356, fraction=0.5))
    assert out.getvalue().startswith("[" + "#" * 10 + "-" * 10 + "]") and "budget" not in out.getvalue()


AXPY = '''def axpy(a, x, y):
    """a * x + y, elementwise, in float64."""
    return [a * xi + yi for xi, yi in zip(x, y)]
'''


def test_kernel_says_the_sdk_is_missing_before_asking(tmp_path):
    (tmp_path / "ops.py").write_text(AXPY)
    shadow = tmp_path / "shadow" / "anthropic"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'anthropic'\")\n")
    p = ckls("kernel", "ops.py::axpy", env={"PYTHONPATH": f"{shadow.parent}{os.pathsep}{ROOT}",
                                            "ANTHROPIC_API_KEY": "sk-test"}, cwd=tmp_path)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 3 and len(lines) == 1 and "pip install anthropic" in lines[0], p.stderr


def test_kernel_says_the_key_is_missing_before_asking(tmp_path):
    (tmp_path / "ops.py").write_text(AXPY)
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    p = subprocess.run([sys.executable, "-m", "ckls", "kernel", "ops.py::axpy"], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL, env={**env, "PYTHONPATH": ROOT}, cwd=tmp_path)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 3 and len(lines) == 1 and "ANTHROPIC_API_KEY" in lines[0], p.stderr


def test_kernel_float_type_from_the_docstring():
    from ckls.kernels.infer import infer
    from ckls.kernels.target import find_target

    inf = infer(find_target("ops.py", AXPY, name="axpy"))
    assert "dtype" not in {q.key for q in inf.questions}
    assert "double" in inf.spec.c_prototype() and "float *" not in inf.spec.c_prototype()
    both = AXPY.replace("in float64", "in float64 (float32 inputs are upcast)")
    assert "dtype" in {q.key for q in infer(find_target("ops.py", both, name="axpy")).questions}


def test_editor_install_without_node_says_so_in_one_line(tmp_path):
    p = ckls("editor", "install", "vscode", "--no-install", env={"PATH": str(tmp_path)})
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 1 and len(lines) == 1 and "Node.js and npm" in lines[0], p.stderr
