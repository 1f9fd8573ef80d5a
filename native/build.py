"""Builds the native core: one place that knows the sources and each file's flags.

Used three ways:
  * by setup.py (pip install .): `compile_objects()` + the cffi builder `ffibuilder` -> ckls/_native*.so
  * `python native/build.py inplace`: the same into the source tree, for development
  * `python native/build.py test [--sanitize] [--cc CC] [--run PREFIX]`: the C tests under native/tests/, each
    linked with every source, optionally under ASan+UBSan or cross-compiled and run under qemu.

ISA files are picked by suffix (`*_avx2.c`, `*_avx512.c`, `*_avx512vnni.c`, `*_amx.c`, `*_neon.c`, `*_neondot.c`) and compiled with
their own flags; on a target that cannot take them they are compiled plain and their `#if` guards leave them empty, so
one source list serves every architecture. On aarch64 NEON is the baseline (no flags) and `*_neondot.c` alone gets
`-march=armv8.2-a+dotprod` (SDOT): the rest of the build stays armv8-a, and dispatch.c uses those kernels only
where the CPU reports the dot-product extension. Every file is told which ISAs this build has (`-DCKLS_HAVE_AVX2` ...): the one
dispatch table (src/dispatch.c) lists those ISAs' kernels, and the runtime picks among them by CPU detection.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent
SRC = ROOT / "src"
INCLUDE = ROOT / "include"
HEADER = INCLUDE / "ckls.h"
TESTS = ROOT / "tests"

COMMON_FLAGS = ["-O3", "-std=gnu11", "-fPIC", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-math-errno",
                "-ffp-contract=off",  # no implicit FMAs: references round like numpy/ggml, SIMD matches them
                "-pthread", f"-I{INCLUDE}"]
X86_ISA_FLAGS = {
    "avx2": ["-mavx2", "-mfma", "-mf16c"],
    "avx512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"],
    "avx512vnni": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx2", "-mfma", "-mf16c"],
    "avxvnni": ["-mavxvnni", "-mavx2", "-mfma", "-mf16c"],
    "amx": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx512bf16", "-mamx-tile",
            "-mamx-int8", "-mamx-bf16", "-mavx2", "-mfma", "-mf16c"],
    "avx512bf16": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16", "-mavx2", "-mfma", "-mf16c"],
}
# aarch64: only the *_neondot.c files, whose kernels dispatch.c calls where the CPU has FEAT_DotProd
ARM_ISA_FLAGS = {
    "neondot": ["-march=armv8.2-a+dotprod"],
}
LIBS = ["m", "pthread"]


def sources() -> list[pathlib.Path]:
    return sorted(SRC.glob("*.c"))


def _isa_of(path: pathlib.Path) -> str | None:
    for isa in ("avx512vnni", "avx512bf16", "avx512", "avxvnni", "avx2", "amx", "neondot", "neon"):
        if path.stem.endswith("_" + isa):
            return isa
    return None


def _target_arch(cc: list[str]) -> str:
    out = subprocess.run(cc + ["-dumpmachine"], capture_output=True, text=True).stdout.strip()
    if out.startswith(("x86_64", "amd64")):
        return "x86_64"
    if out.startswith(("aarch64", "arm64")):
        return "aarch64"
    return out.split("-")[0] or "unknown"


_support_cache: dict[tuple, bool] = {}


def _compiler_accepts(cc: list[str], flags: list[str]) -> bool:
    key = (tuple(cc), tuple(flags))
    if key not in _support_cache:
        with tempfile.TemporaryDirectory() as d:
            src = pathlib.Path(d) / "t.c"
            src.write_text("int main(void){return 0;}\n")
            r = subprocess.run(cc + flags + ["-c", str(src), "-o", str(pathlib.Path(d) / "t.o")],
                               capture_output=True)
            _support_cache[key] = r.returncode == 0
    return _support_cache[key]


def file_flags(path: pathlib.Path, cc: list[str]) -> list[str]:
    """ISA flags for one source file on the compiler's target ([] when the ISA does not apply)."""
    isa = _isa_of(path)
    arch = _target_arch(cc)
    if isa in X86_ISA_FLAGS and arch == "x86_64":
        flags = X86_ISA_FLAGS[isa]
        return flags if _compiler_accepts(cc, flags) else []
    if isa in ARM_ISA_FLAGS and arch == "aarch64":
        flags = ARM_ISA_FLAGS[isa]
        return flags if _compiler_accepts(cc, flags) else []
    if isa == "neon" and arch == "aarch64":
        return []  # NEON is baseline on aarch64
    return []


def isa_defines(cc: list[str]) -> list[str]:
    """-DCKLS_HAVE_<ISA> for every ISA whose files this compiler builds with their flags on its target."""
    arch = _target_arch(cc)
    have = [isa for isa, flags in X86_ISA_FLAGS.items() if arch == "x86_64" and _compiler_accepts(cc, flags)]
    if arch == "aarch64":
        have.append("neon")
        have += [isa for isa, flags in ARM_ISA_FLAGS.items() if _compiler_accepts(cc, flags)]
    return [f"-DCKLS_HAVE_{isa.upper()}" for isa in have]


def default_cc() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def compile_objects(out_dir: pathlib.Path, cc: list[str] | None = None, extra: list[str] | None = None,
                    jobs: int | None = None) -> list[str]:
    """Compiles every source to out_dir (skipping unchanged ones) and returns the object paths."""
    cc = cc or default_cc()
    extra = extra or []
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    headers = b"".join(p.read_bytes() for p in sorted(list(SRC.glob("*.h")) + [HEADER]))
    have = isa_defines(cc)

    def one(src: pathlib.Path) -> str:
        flags = COMMON_FLAGS + have + file_flags(src, cc) + extra
        digest = hashlib.sha1(src.read_bytes() + headers + " ".join(cc + flags).encode()).hexdigest()[:12]
        obj = out_dir / f"{src.stem}.{digest}.o"
        if not obj.exists():
            cmd = cc + flags + ["-c", str(src), "-o", str(obj)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"compiling {src.name} failed:\n{' '.join(cmd)}\n{r.stderr}")
            if r.stderr.strip():
                sys.stderr.write(r.stderr)
        return str(obj)

    with concurrent.futures.ThreadPoolExecutor(jobs or os.cpu_count() or 2) as ex:
        return list(ex.map(one, sources()))


def cdef_text() -> str:
    text = HEADER.read_text()
    start = text.index("/* CKLS_CDEF_BEGIN */") + len("/* CKLS_CDEF_BEGIN */")
    return text[start:text.index("/* CKLS_CDEF_END */")]


def make_ffibuilder(objects: list[str] | None = None):
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef_text())
    ffi.set_source("ckls._native", '#include "ckls.h"', include_dirs=[str(INCLUDE)],
                   extra_objects=objects or [], libraries=LIBS, extra_compile_args=["-O2"])
    return ffi


# setup.py's cffi_modules entry point; objects are attached at build time by setup.py's build_ext.
ffibuilder = make_ffibuilder()


def build_inplace() -> pathlib.Path:
    tmp = ROOT.parent / "build" / "native-inplace"
    objs = compile_objects(tmp / "obj")
    ffi = make_ffibuilder(objs)
    so = ffi.compile(tmpdir=str(tmp), verbose=False)
    dest = ROOT.parent / "ckls" / pathlib.Path(so).name
    # copy beside, then rename: a server or test still running on the old library keeps its mapping intact
    # (copying over it in place rewrites pages that process has mapped and crashes it)
    part = dest.with_name(dest.name + ".part")
    shutil.copy2(so, part)
    os.replace(part, dest)
    return dest


def build_tests(cc: list[str], sanitize: bool, out: pathlib.Path) -> list[pathlib.Path]:
    extra = ["-g", "-O1", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
             "-fno-sanitize-recover=all"] if sanitize else ["-g"]
    objs = compile_objects(out / "obj", cc, extra)
    bins = []
    for test in sorted(TESTS.glob("test_*.c")):
        exe = out / test.stem
        cmd = cc + COMMON_FLAGS + extra + [f"-I{SRC}", str(test)] + objs + ["-o", str(exe)] + \
            [f"-l{lib}" for lib in LIBS] + (["-static"] if os.environ.get("CKLS_STATIC_TESTS") else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"linking {test.name} failed:\n{' '.join(cmd)}\n{r.stderr}")
        bins.append(exe)
    return bins


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("inplace", help="build ckls/_native*.so into the source tree")
    t = sub.add_parser("test", help="build and run the C tests in native/tests/")
    t.add_argument("--sanitize", action="store_true", help="AddressSanitizer + UBSan build")
    t.add_argument("--cc", default=None, help="compiler command (e.g. aarch64-linux-gnu-gcc)")
    t.add_argument("--run", default="", help="prefix to run the binaries (e.g. 'qemu-aarch64 -L /usr/aarch64-linux-gnu')")
    t.add_argument("--out", default=None, help="build folder (default build/native-tests-<cc>[-san])")
    t.add_argument("args", nargs="*", help="arguments passed to every test binary")
    a = ap.parse_args(argv)
    if a.cmd == "inplace":
        print(build_inplace())
        return 0
    cc = shlex.split(a.cc) if a.cc else default_cc()
    name = pathlib.Path(cc[0]).name + ("-san" if a.sanitize else "")
    out = pathlib.Path(a.out) if a.out else ROOT.parent / "build" / f"native-tests-{name}"
    failed = 0
    for exe in build_tests(cc, a.sanitize, out):
        cmd = shlex.split(a.run) + [str(exe)] + a.args
        print("$", " ".join(cmd), flush=True)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        failed |= subprocess.run(cmd, env=env).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
