"""Runs the C tests of native/tests: every one natively and under ASan+UBSan (the kernels, the training backward
and step, the tokenizer), and the kernel test in an aarch64 cross build under qemu (the NEON kernels, and the SDOT
ones on an emulated CPU with and without the dot-product extension). Each run draws a fresh seed, which the C test
prints."""
from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shlex
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
QEMU_LIBS = "/usr/aarch64-linux-gnu"


def _build_module():
    spec = importlib.util.spec_from_file_location("ckls_native_build", ROOT / "native" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ALL = ("test_kernels", "test_backward", "test_train", "test_tokenizer", "test_ngram_memory")


def _run_kernel_test(cc: list[str], sanitize: bool, out: pathlib.Path, run_prefix: list[str],
                     static: bool = False, names: tuple[str, ...] = ("test_kernels",)) -> str:
    build = _build_module()
    old = os.environ.get("CKLS_STATIC_TESTS")
    try:
        if static:
            os.environ["CKLS_STATIC_TESTS"] = "1"
        exes = build.build_tests(cc, sanitize, out)
    finally:
        if static and old is None:
            os.environ.pop("CKLS_STATIC_TESTS", None)
    assert {e.name for e in exes} >= set(names), [e.name for e in exes]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    texts = []
    for exe in (e for e in exes if e.name in names):
        r = subprocess.run(run_prefix + [str(exe)], capture_output=True, text=True, env=env, timeout=300)
        out_text = r.stdout + r.stderr
        last = [ln for ln in r.stdout.splitlines() if ln.strip()][-1:] or [""]
        m = re.fullmatch(r"(\d+) passed, (\d+) failed", last[0].strip())
        ok = (m and int(m.group(2)) == 0 and int(m.group(1)) > 0) or last[0].strip() == "ok: 0 failures"
        assert r.returncode == 0 and ok, f"{exe.name}:\n{out_text[-6000:]}"
        texts.append(out_text)
    return "\n".join(texts)


def test_kernels_native():
    out = _run_kernel_test(_build_module().default_cc(), False, ROOT / "build" / "pytest-kernels", [], names=ALL)
    assert all(f"{n} seed" in out for n in ALL), out[-3000:]


def test_kernels_sanitized():
    cc = _build_module().default_cc()
    probe = subprocess.run(cc + ["-fsanitize=address,undefined", "-x", "c", "-", "-o", os.devnull],
                           input="int main(void){return 0;}", capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"{cc[0]} cannot build with -fsanitize=address,undefined")
    _run_kernel_test(cc, True, ROOT / "build" / "pytest-kernels-san", [], names=ALL)


def _cross() -> tuple[str, str]:
    cross, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if not (cross and qemu and pathlib.Path(QEMU_LIBS).is_dir()):
        msg = "aarch64 cross compiler / qemu-aarch64 missing (apt: gcc-aarch64-linux-gnu qemu-user)"
        if os.environ.get("CKLS_REQUIRE_CROSS") == "1":
            pytest.fail(msg + " and CKLS_REQUIRE_CROSS=1")
        pytest.skip(msg)
    return cross, qemu


def test_kernels_aarch64_qemu():
    """qemu's `max` CPU has the dot-product extension: the NEON table and the SDOT one (neondot: the 8-row GEMMs)
    are both tested."""
    cross, qemu = _cross()
    out = _run_kernel_test([cross], False, ROOT / "build" / "pytest-kernels-aarch64",
                           shlex.split(f"{qemu} -cpu max -L {QEMU_LIBS}"), static=True)
    lines = out.splitlines()
    assert "testing neon" in lines and "testing neondot" in lines, out[-3000:]


def test_kernels_aarch64_qemu_without_dotprod():
    """On a CPU without the dot-product extension (qemu's Cortex-A57) the same build detects neondot absent and
    runs the NEON table alone."""
    cross, qemu = _cross()
    out = _run_kernel_test([cross], False, ROOT / "build" / "pytest-kernels-aarch64",
                           shlex.split(f"{qemu} -cpu cortex-a57 -L {QEMU_LIBS}"), static=True)
    lines = out.splitlines()
    assert "testing neon" in lines and "testing neondot" not in lines, out[-3000:]
    assert any(ln.startswith("skip neondot") for ln in lines), out[-3000:]
