"""Compiling a candidate: gcc -O3 and an ASan+UBSan build for C (and, for a kernel that starts threads, a
ThreadSanitizer build with clang and LLVM's OpenMP runtime), nvcc for CUDA.

The compiler runs in the jail (jail.py) on a copy of the source in the build folder: it sees /usr and that folder,
nothing else, so `#include "~/.ssh/id_rsa"` or `.incbin "/proc/self/environ"` finds nothing to quote or embed.
Compiler errors come back as data (a list of diagnostics), never as exceptions, so they can be fed back to
whoever wrote the kernel. After linking, the shared object is checked as a first line of defence (the cell's
seccomp filter is the second): its undefined symbols, weak ones included, against an allow list — a kernel may
call libm, memory functions and OpenMP, not the Python API, threads, processes or files —, its code for raw
system call instructions, and code that would run while it loads (constructors, .init fragments, IFUNC).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import cache, jail
from .spec import KernelSpec

CC = "gcc"
NVCC = "nvcc"
C_FLAGS = ["-std=gnu11", "-O3", "-march=native", "-fPIC", "-shared", "-fopenmp", "-Wall"]
C_ASAN_FLAGS = ["-std=gnu11", "-O1", "-g", "-march=native", "-fPIC", "-shared", "-fopenmp",
                "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
# ThreadSanitizer needs an OpenMP runtime whose synchronisation it can see. GCC's libgomp is not instrumented:
# its barriers and thread pool are futexes and atomics TSan never sees, so every correct parallel loop is
# reported (tried: an argmax over rows split by `omp parallel for` gives 7 reports). LLVM's libomp tells TSan
# about each fork, join, barrier, task and lock through its tool interface (OMPT) when the archer tool library is
# loaded: only the candidate's own races are left. So the TSan build is clang's, linked to libomp, run with
# OMP_TOOL_LIBRARIES naming archer (Debian/Ubuntu: apt-get install clang libomp-dev).
CLANG = "clang"
C_TSAN_FLAGS = ["-std=gnu11", "-O1", "-g", "-march=native", "-fPIC", "-shared", "-fopenmp", "-fsanitize=thread",
                "-fno-omit-frame-pointer"]
TSAN_INSTALL_HINT = "apt-get install clang libomp-dev"
BUILD_TIMEOUT_S = 120

_DIAG = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+):)?\s*(?P<sev>fatal error|error|warning|note)"
                   r":\s*(?P<msg>.*)$")
_NVCC_DIAG = re.compile(r"^(?P<file>[^\(\n]+)\((?P<line>\d+)\):\s*(?P<sev>error|warning)\s*:?\s*(?P<msg>.*)$")

# Symbols a kernel may import. Anything else (PyRun_*, pthread_create, fork, system, dlopen, fopen, socket...)
# makes the build fail: such a kernel is not a kernel.
_ALLOWED_PREFIXES = ("GOMP_", "omp_", "__cxa_finalize", "_ITM_", "__gmon_start__", "__asan", "__ubsan",
                     "__sanitizer", "__stack_chk_fail", "__assert_fail")
_ALLOWED = set("""
malloc calloc realloc free aligned_alloc posix_memalign memalign memcpy memmove memset memcmp
abort printf fprintf snprintf puts putchar fputs fwrite stderr stdout __printf_chk __fprintf_chk __memcpy_chk
__memmove_chk __memset_chk __vfprintf_chk qsort
sqrt sqrtf exp expf exp2 exp2f expm1 expm1f log logf log2 log2f log10 log10f log1p log1pf pow powf
sin sinf cos cosf tan tanf asin asinf acos acosf atan atanf atan2 atan2f sinh sinhf cosh coshf tanh tanhf
asinh asinhf acosh acoshf atanh atanhf erf erff erfc erfcf tgamma tgammaf lgamma lgammaf
fabs fabsf floor floorf ceil ceilf round roundf trunc truncf rint rintf nearbyint nearbyintf lrint lrintf
llrint llrintf lround lroundf fmod fmodf remainder remainderf fmin fminf fmax fmaxf fma fmaf hypot hypotf
cbrt cbrtf copysign copysignf ldexp ldexpf frexp frexpf modf modff nan nanf sincos sincosf
__isnan __isnanf __isinf __isinff __finite __finitef __fpclassify __fpclassifyf __signbit __signbitf
__exp_finite __expf_finite __log_finite __logf_finite __pow_finite __powf_finite
""".split())
# The TSan build (clang): LLVM's OpenMP entry points and the instrumentation's own calls into the TSan runtime —
# memory accesses, function entry and exit, atomics and fences. Not the rest of its interface (__tsan_acquire,
# __tsan_ignore_thread_begin, mutex annotations ...): with those a kernel could tell TSan a race is ordered.
_ALLOWED_PREFIXES_TSAN = ("__kmpc_",)
_TSAN_INSTRUMENTATION = re.compile(r"__tsan_(init|func_entry|func_exit|(unaligned_|volatile_)?(read|write)\d+"
                                   r"|(read|write)_range|atomic\d+_\w+|atomic_(thread|signal)_fence"
                                   r"|vptr_(read|update)|memcpy|memmove|memset)")
_VARIANT_FLAGS = {"opt": C_FLAGS, "asan": C_ASAN_FLAGS, "tsan": C_TSAN_FLAGS}


@dataclass
class Diagnostic:
    file: str
    line: int
    col: int
    severity: str
    message: str


@dataclass
class BuildResult:
    ok: bool
    variant: str
    so_path: str | None
    command: list[str]
    log: str = ""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    forbidden_symbols: list[str] = field(default_factory=list)
    unavailable: bool = False     # nothing was compiled: the jail is missing here (an error, not the kernel's fault)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "variant": self.variant, "command": " ".join(self.command), "log": self.log,
                "diagnostics": [d.__dict__ for d in self.diagnostics],
                "forbidden_symbols": self.forbidden_symbols}


def parse_diagnostics(log: str) -> list[Diagnostic]:
    out = []
    for line in log.splitlines():
        m = _DIAG.match(line) or _NVCC_DIAG.match(line)
        if m:
            sev = m["sev"].replace("fatal error", "error")
            col = int(m.group("col")) if "col" in m.groupdict() and m.group("col") else 0
            out.append(Diagnostic(m["file"], int(m["line"]), col, sev, m["msg"].strip()))
    return out


def _run(cmd: list[str], cwd: Path) -> tuple[int, str]:
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"})
    except FileNotFoundError:
        return 127, f"{cmd[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, f"compiler timed out after {BUILD_TIMEOUT_S} s"
    return p.returncode, p.stdout + p.stderr


def undefined_symbols(so_path: str) -> list[str]:
    """Undefined dynamic symbols of a shared object, weak references included (a weak `system` resolves to
    libc's as surely as a strong one)."""
    rc, out = _run(["nm", "-D", "--undefined-only", so_path], Path(so_path).parent)
    if rc != 0:
        return ["<nm failed: " + out.strip()[:200] + ">"]
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-2] in ("U", "w", "v", "V"):
            syms.append(parts[-1].split("@")[0])
    return syms


def forbidden_symbols(so_path: str, variant: str = "opt") -> list[str]:
    prefixes = _ALLOWED_PREFIXES + (_ALLOWED_PREFIXES_TSAN if variant == "tsan" else ())
    return sorted({s for s in undefined_symbols(so_path) if s not in _ALLOWED and not s.startswith(prefixes)
                   and not (variant == "tsan" and _TSAN_INSTRUMENTATION.fullmatch(s))})


def uses_threads(so_path: str) -> bool:
    """The kernel starts threads: its gcc build calls into libgomp's parallel entry points (GOMP_parallel,
    GOMP_parallel_loop_*, GOMP_teams ...; a kernel may import no other way to start one). The contract's
    `openmp` flag is not needed: a kernel with `num_threads(4)` runs threads whatever the contract says."""
    return any(s.startswith(("GOMP_parallel", "GOMP_teams", "GOMP_task")) for s in undefined_symbols(so_path))


_TSAN_PROBE: dict[str, str | None] = {}


def tsan_toolchain(cc: str = CLANG) -> str | None:
    """None when a ThreadSanitizer build of an OpenMP kernel can be made and run here (clang with its TSan
    runtime, LLVM's libomp, the archer tool library under /usr, where the jail can see it); otherwise why not,
    with what to install. Probed once (an empty OpenMP kernel is compiled)."""
    if "why" not in _TSAN_PROBE:
        why = None
        if not shutil.which(cc):
            why = f"{cc} not found"
        else:
            with tempfile.TemporaryDirectory(prefix="ckls-tsan-probe-") as d:
                src = Path(d) / "p.c"
                src.write_text("void ckls_p(int n, int *x) {\n#pragma omp parallel for\n"
                               "for (int i = 0; i < n; i++) x[i] = i; }\n")
                rc, log = _run([cc, *C_TSAN_FLAGS, "-o", str(Path(d) / "p.so"), str(src)], Path(d))
                if rc != 0:
                    why = f"{cc} cannot build with -fsanitize=thread -fopenmp: " + log.strip()[-200:]
        if why is None and archer_library(cc) is None:
            why = "LLVM's OpenMP tool library for ThreadSanitizer (libarcher.so) not found under /usr"
        _TSAN_PROBE["why"] = None if why is None else f"{why} ({TSAN_INSTALL_HINT})"
    return _TSAN_PROBE["why"]


def archer_library(cc: str = CLANG) -> str | None:
    """Path of libarcher.so beside the libomp that clang links (it must be under /usr: the jail shows only that)."""
    rc, out = _run([cc, "-print-resource-dir"], Path("/"))
    roots = []
    if rc == 0 and out.strip().startswith("/"):  # /usr/lib/llvm-14/lib/clang/14.0.6 -> /usr/lib/llvm-14/lib
        roots.append(Path(out.strip()).parent.parent)
    roots.append(Path("/usr/lib/x86_64-linux-gnu"))
    for r in roots:
        p = (r / "libarcher.so").resolve()
        if p.is_file() and p.is_relative_to("/usr"):
            return str(p)
    return None


_RAW_SYSCALL = re.compile(r"\s(syscall|sysenter|int\s+\$0x80|svc\s+#?0x0|svc\s+#?0)\b")


def raw_syscalls(so_path: str) -> list[str]:
    """Instructions that enter the OS kernel directly, bypassing every symbol the allow list looks at."""
    rc, out = _run(["objdump", "-d", "--no-show-raw-insn", so_path], Path(so_path).parent)
    if rc != 0:
        return ["<objdump failed: " + out.strip()[:200] + ">"]
    found, func = [], "?"
    for line in out.splitlines():
        if line.endswith(">:"):
            func = line.split("<", 1)[-1][:-2]
        elif _RAW_SYSCALL.search(line):
            found.append(f"{line.split()[-1] if line.split() else 'syscall'} in {func}")
    return sorted(set(found))


_INIT_SECTIONS = (".init", ".init_array", ".preinit_array", ".ctors")
_BASELINE: dict[str, dict[str, int]] = {}


def _init_sizes(so_path: str) -> dict[str, int] | None:
    rc, out = _run(["readelf", "-SW", so_path], Path(so_path).parent)
    if rc != 0:
        return None
    sizes = {}
    for line in out.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 5 and parts[1] in _INIT_SECTIONS:
            sizes[parts[1]] = int(parts[5], 16)
    return sizes


def load_time_code(so_path: str, variant: str, cc: str = CC) -> list[str]:
    """Code that would run while the kernel loads (constructors, .init fragments, IFUNC resolvers): a kernel
    has none, and none may run before the cell's strictest filter holds. Compared with an empty kernel built
    the same way (the compiler's own entries)."""
    flags = _VARIANT_FLAGS[variant]
    name = "baseline-" + cache.key(" ".join(flags), cache.compiler_id(cc)) + ".json"
    if variant not in _BASELINE and isinstance(cache.load_json(name), dict):
        _BASELINE[variant] = cache.load_json(name)
    if variant not in _BASELINE:
        with tempfile.TemporaryDirectory(prefix="ckls-baseline-") as d:
            src = Path(d) / "empty.c"
            src.write_text("void ckls_empty(void) {}\n")
            rc, log = _run([cc, *flags, "-o", str(Path(d) / "e.so"), str(src), "-lm"], Path(d))
            base = _init_sizes(str(Path(d) / "e.so")) if rc == 0 else None
            if base is None:
                return ["<the compiler's baseline would not build: " + log.strip()[:200] + ">"]
            _BASELINE[variant] = base
            cache.store_json(name, base)
    sizes = _init_sizes(so_path)
    if sizes is None:
        return ["<readelf failed>"]
    found = [f"{name} ({n - _BASELINE[variant].get(name, 0)} extra bytes)" for name, n in sizes.items()
             if n > _BASELINE[variant].get(name, 0)]
    rc, out = _run(["readelf", "-rW", "--dyn-syms", so_path], Path(so_path).parent)
    if "IRELATIV" in out or re.search(r"\sIFUNC\s", out):
        found.append("IFUNC resolver")
    return ["code run at load: " + f for f in found]


def _jailed(cmd: list[str], source: Path, workdir: Path) -> tuple[list[str], Path]:
    """The compiler command run in the jail on a copy of the source inside the build folder (mounted /build).
    Returns (command, path of the copy on this side)."""
    copy = workdir / source.name
    if copy.resolve() != source:
        shutil.copyfile(source, copy)
    os.chmod(workdir, 0o755)
    inside = ["/build/" + source.name if a == str(source) else a.replace(str(workdir), "/build") for a in cmd]
    if Path(cmd[0]).name in ("gcc", "cc", "clang"):  # debug info names the user's file, not the jail's copy
        inside.insert(1, f"-ffile-prefix-map=/build/{source.name}={source}")
    ro = {}
    path = "/usr/local/bin:/usr/bin:/bin"
    exe = shutil.which(cmd[0])
    if exe:  # by its full path, its folder first on PATH: a toolkit off the jail's PATH (/usr/local/cuda/bin)
        real = Path(exe).resolve()
        if not real.is_relative_to("/usr"):  # a toolkit outside /usr (e.g. /opt/cuda): mounted read-only
            ro[str(real.parent.parent)] = str(real.parent.parent)
        inside[0] = str(real)
        path = f"{real.parent}:{path}"
    return jail.command(inside, ro=ro, rw={str(workdir): "/build"}, chdir="/build",
                        env={"PATH": path, "LC_ALL": "C"}), copy


JAIL_MISSING = 126


def _compile(cmd: list[str], source: Path, workdir: Path) -> tuple[int, str]:
    try:
        jcmd, _ = _jailed(cmd, source, workdir)
    except jail.JailUnavailable as e:
        return JAIL_MISSING, f"not compiled: {e}"
    rc, log = _run(jcmd, workdir)
    return rc, log.replace("/build/" + source.name, str(source)).replace("/build/", str(workdir) + "/")


def build_c(source: str | Path, workdir: str | Path, variant: str = "opt", cc: str | None = None) -> BuildResult:
    source, workdir = Path(source).resolve(), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cc = cc or (CLANG if variant == "tsan" else CC)
    flags = _VARIANT_FLAGS[variant]
    so = workdir / f"kernel_{variant}.so"
    cmd = [cc, *flags, "-o", str(so), str(source), "-lm"]
    rc, log = _compile(cmd, source, workdir)
    res = BuildResult(rc == 0, variant, str(so) if rc == 0 else None, cmd, log, parse_diagnostics(log),
                      unavailable=rc == JAIL_MISSING)
    if res.ok:
        res.forbidden_symbols = (forbidden_symbols(str(so), variant) + raw_syscalls(str(so))
                                 + load_time_code(str(so), variant, cc))
        if res.forbidden_symbols:
            res.ok = False
            res.log += "\nforbidden imports or instructions: " + ", ".join(res.forbidden_symbols)
    return res


def build_cuda(source: str | Path, workdir: str | Path, nvcc: str = NVCC) -> BuildResult:
    """Compile (and link into a shared object) a CUDA candidate; no GPU is needed for this. Machine code for
    the GPU present (so nothing is compiled when it loads), else nvcc's default target; -lineinfo so
    compute-sanitizer names source lines; the CUDA runtime linked statically (nvcc's default)."""
    source, workdir = Path(source).resolve(), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    so = workdir / "kernel_cuda.so"
    cc = gpu_compute_capability()
    arch = [f"-gencode=arch=compute_{cc},code=sm_{cc}"] if cc else []
    cmd = [nvcc, "-O3", *arch, "-shared", "-Xcompiler", "-fPIC", "-lineinfo", "-o", str(so), str(source)]
    rc, log = _compile(cmd, source, workdir)
    return BuildResult(rc == 0, "cuda", str(so) if rc == 0 else None, cmd, log, parse_diagnostics(log),
                       unavailable=rc == JAIL_MISSING)


def build(spec: KernelSpec, source: str | Path, workdir: str | Path) -> list[BuildResult]:
    """All builds a verdict needs: [opt, asan] for C, [cuda] for CUDA. Stops at the first failure."""
    if spec.language == "cuda":
        return [build_cuda(source, workdir)]
    out = [build_c(source, workdir, "opt")]
    if out[0].ok:
        out.append(build_c(source, workdir, "asan"))
    return out


def gpu_present() -> bool:
    """True when a CUDA device is visible (nvidia-smi lists one)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        p = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0 and "GPU" in p.stdout


def gpu_compute_capability() -> str | None:
    """"90" for an H100, from nvidia-smi; None without a GPU."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        p = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    cap = p.stdout.strip().splitlines()[0].strip() if p.returncode == 0 and p.stdout.strip() else ""
    return cap.replace(".", "") if re.fullmatch(r"\d+\.\d+", cap) else None


def compute_sanitizer() -> str | None:
    """Path of NVIDIA's compute-sanitizer: on PATH, else beside nvcc or in the usual CUDA folders."""
    exe = shutil.which("compute-sanitizer")
    if exe:
        return exe
    roots = [Path(shutil.which(NVCC) or "/nonexistent").resolve().parent.parent, Path("/usr/local/cuda")]
    for r in roots:
        for c in (r / "bin" / "compute-sanitizer", r / "compute-sanitizer" / "compute-sanitizer"):
            if c.is_file() and os.access(c, os.X_OK):
                return str(c)
    return None


_SAN_SKIP = ("COMPUTE-SANITIZER", "ERROR SUMMARY", "RACECHECK SUMMARY", "LEAK SUMMARY", "Target application")


def sanitizer_finding(log: str) -> str:
    """The first error block compute-sanitizer wrote (its lines start with "========= "), or "" when it
    reported none. Its closing summary, when present, has the last word."""
    lines = [ln for ln in log.splitlines() if ln.startswith("=========")]
    summary = [ln for ln in lines if "ERROR SUMMARY:" in ln]
    if summary and re.search(r"ERROR SUMMARY: 0 errors", summary[-1]):
        return ""
    for i, ln in enumerate(lines):
        body = ln[9:].strip()
        if body and not body.startswith(_SAN_SKIP):
            block = [body]
            for nxt in lines[i + 1:i + 16]:
                b = nxt[9:].rstrip()
                if not b.strip():
                    break
                block.append(b)
            return "\n".join(block)
    return "\n".join(summary[-1:])


def sanitizer_libs() -> dict[str, str]:
    """Runtime libraries to LD_PRELOAD when loading an ASan build into an uninstrumented Python."""
    out = {}
    for lib in ("libasan.so", "libubsan.so"):
        rc, path = _run([CC, f"-print-file-name={lib}"], Path("/"))
        path = path.strip()
        if rc == 0 and path.startswith("/") and Path(path).exists():
            out[lib] = str(Path(path).resolve())
    return out
