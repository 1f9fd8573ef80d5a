"""Every shell command in README.md's ```sh blocks runs as written (in a scratch folder, `ckls` being this
checkout's `python -m ckls`) and exits 0 — unless SKIP names it, with the reason. A new README command fails
here until it runs or is listed; a SKIP entry no README command matches fails too, so the list stays true."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")

# command prefix -> why it does not run here
SKIP = {
    "pip install .": "builds and installs ckls into this environment (a C build, ~20 s); .ci/run does it on a "
                     "fresh machine",
    "bash .ci/run": "installs the toolchains and runs every test",
    "ckls tune .": "a tuning round takes minutes; tests/test_tune_cli.py runs one on a small budget",
    "ckls eval completion": "hundreds of completions; tests/test_eval_cli.py runs a small evaluation",
    "ckls verify": "needs bubblewrap, a Python function and a kernel (placeholders); tests/test_verify_*.py",
    "export": "sets the real Messages API key (a shell builtin)",
    "ckls skills eval": "the real Messages API, minutes of agent runs",
    "python -m venv": "creates a virtual environment in the checkout",
    ". .venv/bin/activate": "activates that environment (a shell builtin)",
    "pip install -e": "installs into the current environment",
    "python native/build.py inplace": "rebuilds the native module other tests are using",
    "python -m pytest tests": "the whole test suite",
    "python native/build.py test --sanitize": "the C tests under sanitizers, minutes",
}

APP = "import math\n\n\n" + "".join(f"value_{i} = math.sqrt({i}) + {i}\n" for i in range(20))  # line 12: --col 9


def readme_commands() -> list[str]:
    text = open(README, encoding="utf-8").read()
    out = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            cmd: list[str] = []
            for w in words + ["&&"]:
                if w == "&&":
                    if cmd:
                        out.append(shlex.join(cmd))
                    cmd = []
                else:
                    cmd.append(w)
    return out


COMMANDS = readme_commands()


def skipped(cmd: str) -> str | None:
    return next((why for pre, why in SKIP.items() if cmd == pre or cmd.startswith(pre + " ")), None)


def test_the_readme_has_commands_and_every_skip_is_used():
    assert len(COMMANDS) >= 10
    unused = [pre for pre in SKIP if not any(skipped(c) == SKIP[pre] and (c == pre or c.startswith(pre + " "))
                                             for c in COMMANDS)]
    assert not unused, f"SKIP entries no README command matches: {unused}"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    from ckls.models import default_model_path

    d = tmp_path_factory.mktemp("readme")
    (d / "app.py").write_text(APP)
    for name in ("MODEL.gguf", "IN.gguf", "model.gguf"):
        os.symlink(default_model_path(), d / name)
    write_adapter_for(default_model_path(), d / "ADAPTER.gguf")
    return d


def write_adapter_for(model, path) -> None:
    """A small LoRA adapter (rank 2, two matrices of layer 0) for `model`, as `ckls tune` would leave one."""
    import numpy as np

    from ckls.runtime.adapter_gguf import LoraWeights, write_adapter
    from ckls.runtime.gguf_file import read_gguf

    f = read_gguf(model)
    rng = np.random.default_rng(0)
    pairs = {}
    for name in ("blk.0.attn_q.weight", "blk.0.ffn_down.weight"):
        n_in, n_out = f.tensors[name].ne[:2]
        pairs[name] = (rng.standard_normal((2, n_in)).astype(np.float32) * 0.01,
                       rng.standard_normal((n_out, 2)).astype(np.float32) * 0.01)
    write_adapter(path, LoraWeights(f.get("general.architecture"), 4.0, pairs))


@pytest.mark.parametrize("cmd", COMMANDS)
def test_readme_command_runs(cmd, scratch):
    why = skipped(cmd)
    if why:
        pytest.skip(why)
    argv = shlex.split(cmd)
    assert argv[0] == "ckls", f"a README command that is not ckls and not in SKIP: {cmd}"
    env = {**os.environ, "PYTHONPATH": ROOT}
    p = subprocess.run([sys.executable, "-m", "ckls", *argv[1:]], cwd=scratch, env=env, capture_output=True,
                       text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert p.returncode == 0 and "Traceback" not in p.stderr, (cmd, p.returncode, p.stderr[-2000:])
