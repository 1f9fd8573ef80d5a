"""The judge's side of the cell (cell/cell.c): building it for a contract, starting it in the jail, one call.

The judge lays out a call's buffers in a shared arena (a memfd both processes map), asks the cell to call the
kernel, waits for its answer within a deadline, and then reads the arena itself. The cell's answer carries
nothing the verdict depends on but "it returned" (and the MXCSR it saw, a courtesy check); times are measured
here, on the judge's clock, from request to answer.
"""
from __future__ import annotations

import fcntl
import mmap
import os
import random
import re
import select
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import cache, jail, seccomp
from .spec import KernelSpec

CELL_SOURCE = Path(__file__).resolve().parent / "cell" / "cell.c"
# the cells' headers (cell_trace.h: the CUDA cell's diagnostic builds only): part of what a cached cell is built from
CELL_HEADERS = tuple(CELL_SOURCE.parent / h for h in ("cell_io.h", "cell_setup.h", "cell_trace.h"))
_CELL_FILES = ("cell.c", *(h.name for h in CELL_HEADERS))  # a sanitizer's frames in them are not the kernel's
MAGIC_REQ, MAGIC_ANS = 0x636b6c7363656c6c, 0x6c6c6563736c6b63
MAX_WORDS = 256
OP_CALL, OP_PING, OP_FLUSH, OP_GO = 1, 2, 3, 4
FLAG_COPY = 1
_REQ = struct.Struct(f"<7Q{MAX_WORDS}Q{MAX_WORDS}Q{MAX_WORDS}Q")
_ANS = struct.Struct("<6Q")
MXCSR_FTZ_DAZ = 0x8040
MXCSR_CONTROL = 0xFFC0  # DAZ, exception masks, rounding, FTZ (bits 0-5 are status flags)
_CTYPES = {"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t"}


def stub_source(spec: KernelSpec) -> str:
    """stub.h: the contract's exact C call, unpacked from the request's 64-bit words."""
    params, casts, ptr_words = spec.c_params(), [], []
    w = 0
    for _ in spec.sizes:
        casts.append(f"(int64_t)w[{w}]")
        w += 1
    for a in spec.args:
        if a.kind == "scalar":
            casts.append({"f32": f"cell_f32(w[{w}])", "f64": f"cell_f64(w[{w}])",
                          "i32": f"(int32_t)w[{w}]", "i64": f"(int64_t)w[{w}]"}[a.dtype])
            w += 1
            continue
        const = "const " if a.role == "in" else ""
        casts.append(f"({const}{_CTYPES[a.dtype]} *)(uintptr_t)w[{w}]")
        ptr_words.append(w)
        w += 1
        if a.views:
            for _ in a.shape:
                casts.append(f"(int64_t)w[{w}]")
                w += 1
    if w > MAX_WORDS:
        raise ValueError(f"the contract has {w} parameters; at most {MAX_WORDS}")
    return "\n".join([
        "#include <stdint.h>", "#include <string.h>",
        f'#define CELL_FUNCTION "{spec.name}"', f"#define CELL_NWORDS {w}", f"#define CELL_NPTRS {len(ptr_words)}",
        f"static const int cell_ptr_words[{max(1, len(ptr_words))}] = {{{', '.join(map(str, ptr_words)) or '0'}}};",
        "static inline float cell_f32(uint64_t v) { uint32_t u = (uint32_t)v; float f; memcpy(&f, &u, 4); "
        "return f; }",
        "static inline double cell_f64(uint64_t v) { double d; memcpy(&d, &v, 8); return d; }",
        f"typedef void (*cell_fn_t)({', '.join(params) or 'void'});",
        "static void cell_invoke(void *fn, const uint64_t *w) {",
        f"    (void)w; ((cell_fn_t)fn)({', '.join(casts)});", "}", ""])


def scalar_word(dtype: str, value) -> int:
    if dtype == "f32":
        return int(np.array([value], np.float32).view(np.uint32)[0])
    if dtype == "f64":
        return int(np.array([value], np.float64).view(np.uint64)[0])
    return int(np.array([value], np.int64).view(np.uint64)[0])


@dataclass
class CellDied(Exception):
    reason: str      # crash, timeout, sanitizer, forbidden_syscall, load (the kernel's); start (the judge's)
    detail: str
    log_tail: str = ""

    def __str__(self):
        return f"{self.reason}: {self.detail}"


@dataclass
class Answer:
    seconds: float          # judge's clock, request to answer
    cell_ns: int            # the cell's own count (not trusted; reports only)
    mxcsr_before: int       # (the CUDA cell: the step that failed)
    mxcsr_after: int
    status: int = 0         # the CUDA cell: the first CUresult that failed (0: none)


class Arena:
    """The shared memory of one cell: a read-write view, and the same bytes again read-only just above."""

    def __init__(self, nbytes: int, low: bool = False):
        self.nbytes = (nbytes + 4095) & ~4095
        self.limit = self.nbytes  # alloc() hands out [0, limit); the CUDA cell keeps a tail for its warm-up
        self.fd = os.memfd_create("ckls-arena", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, self.nbytes)
        self.ro_fd = os.open(f"/proc/self/fd/{self.fd}", os.O_RDONLY | os.O_CLOEXEC)
        self.map = mmap.mmap(self.fd, self.nbytes)
        self.bytes = np.frombuffer(self.map, np.uint8)
        # Where the cell maps it: a random page-aligned spot, so the place is no tell either. low: below 512 GiB,
        # for the ThreadSanitizer cell, whose runtime reserves (and makes inaccessible) everything from there to
        # the heap except its own shadow and the program's regions; the low 512 GiB are application memory for it.
        base, spots = (0x1000000000, 1 << 24) if low else (0x500000000000, 1 << 28)
        self.addr = base + random.SystemRandom().randrange(spots) * 4096
        self.top = 0

    def reset(self) -> None:
        self.top = random.SystemRandom().randrange(0, 64) * 64

    def alloc(self, nbytes: int, align: int = 64) -> tuple[np.ndarray, int]:
        """A zeroed-later slice of the arena: (uint8 view, offset)."""
        off = (self.top + align - 1) // align * align
        if off + nbytes > self.limit:
            raise MemoryError(f"a case needs more than the arena's {self.nbytes >> 20} MiB")
        self.top = off + nbytes
        return self.bytes[off:off + nbytes], off

    def address(self, offset: int, readonly: bool = False) -> int:
        return self.addr + offset + (self.nbytes if readonly else 0)

    def close(self) -> None:
        self.bytes = None
        try:
            self.map.close()
        except BufferError:  # a view is still alive somewhere; the mapping goes with the process
            pass
        for fd in (self.fd, self.ro_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def sanitizer_kind(sanitizer) -> str | None:
    """None, "asan" (ASan+UBSan; True means this) or "tsan" (ThreadSanitizer)."""
    return None if not sanitizer else ("asan" if sanitizer is True else str(sanitizer))


def build_cell(spec: KernelSpec, workdir: str | Path, sanitizer=False, cc: str | None = None) -> tuple[str | None, str]:
    """Compile the cell for this contract; (path, log). sanitizer: False, True or "asan" (ASan+UBSan, gcc), "tsan"
    (ThreadSanitizer, clang, linked to LLVM's libomp like the kernel's TSan build: a sanitizer's runtime must be
    in the program, not in the kernel's shared object)."""
    workdir = Path(workdir)
    stub = stub_source(spec)
    (workdir / "stub.h").write_text(stub)
    kind = sanitizer_kind(sanitizer)
    cc = cc or ("clang" if kind == "tsan" else "gcc")
    exe = workdir / {None: "cell", "asan": "cell_asan", "tsan": "cell_tsan"}[kind]
    flags = ["-std=gnu11", "-O2", "-Wall", "-Wl,-z,relro,-z,now"]
    if kind == "asan":
        flags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]
    elif kind == "tsan":
        flags += ["-fsanitize=thread", "-fopenmp", "-DCELL_OMP_INIT", "-fno-omit-frame-pointer", "-g"]
    return compile_cell(CELL_SOURCE, stub, exe, flags, cc, "cell")


def compile_cell(source: Path, stub: str, exe: Path, flags: list[str], cc: str, what: str) -> tuple[str | None, str]:
    """Either cell (source, with its contract's stub.h beside exe) compiled into exe, or fetched from the build
    cache: (path, log). what: "cell" or "CUDA cell", for the cache entry's name and a failure's message."""
    text = source.read_text() + "".join(h.read_text() for h in CELL_HEADERS)
    name = {"cell": "cell-", "CUDA cell": "cell-cuda-"}[what] + cache.key(stub, text, " ".join(flags),
                                                                          cache.compiler_id(cc))
    if cache.fetch(name, exe):  # the same contract was judged before: the same cell
        return str(exe), ""
    cmd = [cc, *flags, "-I", str(exe.parent), "-o", str(exe), str(source), "-ldl"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{what} build failed: {e}"
    if p.returncode != 0:
        return None, p.stdout + p.stderr
    os.chmod(exe, 0o755)
    cache.store(name, exe)
    return str(exe), p.stdout + p.stderr


class Cell:
    """One running cell (restarted by the caller after it dies)."""

    def __init__(self, exe: str, so_path: str, arena: Arena, log_path: str, timeout_s: float,
                 sanitizer: bool = False, env: dict | None = None):
        self.exe, self.so, self.arena, self.log_path = exe, so_path, arena, log_path
        self.timeout_s, self.sanitizer, self.env = timeout_s, sanitizer, env or {}
        self.proc = None
        self.starts = 0

    n_filters = 2  # seccomp programs, in descriptors 6, 7 ...

    def _programs(self, arena: tuple[int, int], pid: int) -> tuple[bytes, ...]:
        return seccomp.programs(arena, pid, relaxed_open=bool(self.sanitizer))

    def _started(self) -> None:
        """After the cell said it is ready (the CUDA cell makes its warm-up call here)."""

    def _argv(self) -> list[str]:
        cell_dir = os.path.dirname(self.exe)
        inner = ["/cell/" + os.path.basename(self.exe), "/cell/" + os.path.basename(self.so),
                 hex(self.arena.addr), str(self.arena.nbytes)]
        env = {"PATH": "/usr/bin", "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "passive", **self.env}
        # The sanitizer runtimes read /proc/self/maps as they start: that cell gets its own /proc (and PID namespace).
        # The ThreadSanitizer cell: LLVM's libomp registers itself in a file in /dev/shm and TSan keeps its read-only
        # shadow in a file in /tmp; both are the jail's own empty tmpfs, writable by anyone, discarded with it.
        return jail.command(inner, ro={cell_dir: "/cell"}, env=env, setuid=True, proc=bool(self.sanitizer),
                            open_tmp=self.sanitizer == "tsan")

    def start(self) -> None:
        self.close()
        fds = {}
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        filters = range(6, 6 + self.n_filters)
        for i in filters:
            fds[i] = os.memfd_create(f"ckls-seccomp-{i}", os.MFD_CLOEXEC)
        fds[3], fds[4], fds[5] = self.arena.fd, ans_w, self.arena.ro_fd
        log = open(self.log_path, "ab")
        argv = self._argv()

        def place_fds():  # in the child: our descriptors at exactly 3..7 (8) (via high numbers: no collisions)
            high = {k: fcntl.fcntl(v, fcntl.F_DUPFD, 100) for k, v in fds.items()}
            for k, v in high.items():
                os.dup2(v, k, inheritable=True)
            os.setsid()

        self.proc = subprocess.Popen(argv, stdin=req_r, stdout=log, stderr=log, env={}, cwd="/",
                                     pass_fds=tuple(fds), preexec_fn=place_fds, close_fds=True)
        log.close()
        for fd in (req_r, ans_w):
            os.close(fd)
        self.req_w, self.ans_r = req_w, ans_r
        self.buf = b""
        self.starts += 1
        try:
            pid = self._answer(0, max(self.timeout_s, 30.0), "start")[5]  # hello: the cell's pid
            lo, hi = self.arena.addr, self.arena.addr + 2 * self.arena.nbytes
            for i, blob in zip(filters, self._programs((lo, hi), pid)):
                os.write(fds[i], blob)
        finally:
            for i in filters:
                os.close(fds[i])
        self.request(OP_GO, timeout=max(self.timeout_s, 30.0), what="start")  # ready: the filters hold
        self._started()

    def close(self) -> None:
        if self.proc is None:
            return
        jail.kill_tree(self.proc.pid)  # a cell in a loop reads no closed pipe
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self.req_w, self.ans_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc = None

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # ---- requests ------------------------------------------------------------------------------------
    def request(self, op: int, words=(), threads: int = 1, repeat: int = 1, windows=None,
                timeout: float | None = None, what: str = "call", flags: int | None = None) -> Answer:
        if self.proc is None:
            self.start()
        nonce = random.getrandbits(64)
        w = list(words) + [0] * (MAX_WORDS - len(words))
        lo = [x[0] for x in windows or ()] + [0] * (MAX_WORDS - len(windows or ()))
        hi = [x[1] for x in windows or ()] + [0] * (MAX_WORDS - len(windows or ()))
        if flags is None:
            flags = FLAG_COPY if windows else 0
        msg = _REQ.pack(MAGIC_REQ, nonce, op, threads, repeat, flags, len(words), *w, *lo, *hi)
        t0 = time.perf_counter()
        try:
            os.write(self.req_w, msg)
        except OSError:
            pass  # it is gone; the answer's read says why
        a = self._answer(0 if op == OP_GO else nonce, timeout or self.timeout_s, what)
        return Answer(time.perf_counter() - t0, a[5], a[3], a[4], a[2])

    def _answer(self, nonce: int, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while len(self.buf) < _ANS.size:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise CellDied("timeout", f"no answer within {timeout:.0f} s (hang or runaway work)",
                               self.log_tail())
            ready, _, _ = select.select([self.ans_r], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self.ans_r, 4096)
                if not chunk:
                    raise self._died(what)
                self.buf += chunk
            elif self.proc.poll() is not None:
                raise self._died(what)
        a, self.buf = _ANS.unpack(self.buf[:_ANS.size]), self.buf[_ANS.size:]
        if a[0] != MAGIC_ANS or a[1] != nonce or self.buf:
            self.close()
            raise CellDied("crash", "garbage on the answer channel", self.log_tail())
        return a

    def _died(self, what: str) -> CellDied:
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        self.close()
        tail = self.log_tail(16000)
        return died_reason(rc, tail, starting=(what == "start"))


_FRAME = re.compile(r"\(((?:/cell/)?([\w.+-]+))\+(0x[0-9a-fA-F]+)\)")


def symbolize(log: str, cell_dir: str) -> str:
    """Sanitizer frames "(/cell/kernel_asan.so+0x122a)" (ThreadSanitizer: "(kernel_tsan.so+0x122a)") made
    readable here, where the files are: "in add /path/kernel.c:12". The cell itself cannot (no symbolizer may run
    inside it). Frames of other modules (libc, libomp) stay as they are."""
    cache: dict[tuple[str, str], str] = {}

    def one(m):
        key = (m.group(2), m.group(3))
        host = os.path.join(cell_dir, m.group(2))
        if m.group(2).startswith(".") or not os.path.isfile(host):
            return m.group(0)
        if key not in cache:
            try:
                p = subprocess.run(["addr2line", "-f", "-C", "-e", host, m.group(3)], capture_output=True,
                                   text=True, timeout=10)
                func, _, loc = p.stdout.strip().partition("\n")
                ok = p.returncode == 0 and loc and not loc.startswith("??")
                cache[key] = f"in {func} {loc}" if ok else m.group(0)
            except (OSError, subprocess.TimeoutExpired):
                cache[key] = m.group(0)
        return cache[key]

    return _FRAME.sub(one, log)


def sanitizer_summary(first: str, log: str) -> str:
    """"AddressSanitizer: heap-buffer-overflow, READ of size 4 in add kernel.c:12" from a whole report."""
    head = first.split(" on address ")[0].split(" on unknown address")[0]
    access = next((ln.strip().split(" at 0x")[0] for ln in log.splitlines()
                   if ln.strip().startswith(("READ of size", "WRITE of size"))), "")
    where = first_frame(log)
    return head + (f", {access}" if access else "") + (f" in {where}" if where else "")


_TSAN_ACCESS = re.compile(r"^\s*(Previous |)(atomic |)(read|write) of size (\d+) at \S+ by (main thread|thread T\d+)",
                          re.IGNORECASE)


def _tsan_where(lines: list[str]) -> str:
    """The first frame of an access's stack that is in the candidate's code: "argmax_rows.c:15 (in an OpenMP
    parallel region)"."""
    for line in lines:
        line = line.strip()
        if not line.startswith("#"):
            break
        m = re.search(r" in (\S+) (\S+):(\d+)", line)
        if m and not m.group(2).endswith((*_CELL_FILES, "stub.h")):
            func, path, num = m.group(1), m.group(2), int(m.group(3))
            what = "an OpenMP parallel region" if func.startswith(".omp_outlined") else func
            return f"{os.path.basename(path)}:{num} (in {what}{_source_line(path, num)})"
    return "a frame outside the kernel"


def _source_line(path: str, num: int) -> str:
    """": `best = row[0];`", the line of the kernel's source a report names (the judge's copy of it)."""
    try:
        with open(path, errors="replace") as f:
            for i, text in enumerate(f, 1):
                if i == num:
                    text = " ".join(text.split())
                    return f": `{text[:80]}`" if text else ""
    except OSError:
        pass
    return ""


def tsan_summary(log: str) -> str:
    """ThreadSanitizer's report in one line: "data race: thread T2 writes 8 bytes at argmax.c:15 (in an OpenMP
    parallel region) while thread T1 read them at argmax.c:12 without synchronisation (stack of main thread)"."""
    lines = log.splitlines()
    start = next((i for i, ln in enumerate(lines) if "WARNING: ThreadSanitizer:" in ln), None)
    if start is None:
        return "ThreadSanitizer: " + next((ln.strip() for ln in lines if "ThreadSanitizer" in ln), "a report")
    kind = lines[start].split("WARNING: ThreadSanitizer:", 1)[1].split("(pid=")[0].strip()
    accesses, location = [], ""
    for i in range(start + 1, min(len(lines), start + 80)):
        m = _TSAN_ACCESS.match(lines[i])
        if m:
            verb = ("atomically " if m.group(2) else "") + ("writes" if m.group(3).lower() == "write" else "reads")
            if m.group(1):
                verb = verb.replace("writes", "wrote").replace("reads", "read")
            accesses.append(f"{m.group(5)} {verb} {m.group(4)} bytes at {_tsan_where(lines[i + 1:i + 12])}")
        elif lines[i].strip().startswith("Location is ") and not location:
            location = lines[i].strip()[len("Location is "):].rstrip(".")
        elif lines[i].startswith("SUMMARY:"):
            break
    text = f"ThreadSanitizer: {kind}"
    if accesses:
        text += ": " + accesses[0]
        if len(accesses) > 1:
            text += " while " + accesses[1] + " without synchronisation"
    return text + (f" ({location})" if location else "")


def first_frame(log: str) -> str | None:
    """The first frame of the report that is the candidate's code (file:line), if any."""
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("#") and " in " in line and ":" in line.rsplit(" ", 1)[-1] \
                and not any(f in line for f in _CELL_FILES):
            return line.split(" in ", 1)[1]
    for line in log.splitlines():  # UBSan: "FILE:LINE:COL: runtime error: ..."
        if "runtime error:" in line:
            return line.split(": runtime error:", 1)[0].strip()
    return None


def died_reason(rc: int | None, tail: str, starting: bool = False) -> CellDied:
    """Why the cell died, from its exit status (bwrap passes the cell's on: 128+N for a signal) and its log."""
    from .sandbox import sanitizer_excerpt, signal_name
    san = sanitizer_excerpt(tail)
    if san:
        return CellDied("sanitizer", san.splitlines()[0].split("ERROR: ")[-1].strip(), san)
    for line in tail.splitlines():
        if line.startswith("ckls-cell: forbidden system call "):
            words = line.split()  # ckls-cell: forbidden system call NR arg0 A
            nr = int(words[4])
            arg = f" (first argument {words[6]})" if len(words) > 6 else ""
            return CellDied("forbidden_syscall", f"made a system call a kernel may not make: "
                            f"{seccomp.syscall_name(nr)}{arg}", tail)
    if starting and rc in (2, 3, 4, 5):  # 4: the kernel's shared object would not load (its fault); else ours
        cell_lines = [ln for ln in tail.splitlines() if ln.startswith("ckls-cell:")]
        msg = cell_lines[-1] if cell_lines else f"exit status {rc}"
        return CellDied("load" if rc == 4 else "start", msg[:300], tail)
    if rc is not None and (rc > 128 or rc < 0):  # bubblewrap passes the cell's death on as 128+N
        return CellDied("crash", f"killed by {signal_name(rc - 128 if rc > 128 else -rc)}", tail)
    return CellDied("crash", f"exited with status {rc} during the call", tail)


class CellKernel:
    """The contract's calls through a cell: buffers live in its arena, arguments go as words."""

    def __init__(self, spec: KernelSpec, exe: str, so_path: str, log_path: str, timeout_s: float,
                 sanitizer=False, arena_mb: int = 1024, env: dict | None = None):
        self.spec, self.sanitizer = spec, sanitizer
        self.arena = Arena(arena_mb << 20, low=sanitizer_kind(sanitizer) == "tsan")
        self.cell = Cell(exe, so_path, self.arena, log_path, timeout_s, sanitizer=sanitizer, env=env)
        self.threads = 1
        self.last: Answer | None = None

    def set_threads(self, n: int) -> None:
        self.threads = max(1, int(n))

    def words(self, sizes: dict, bufs: dict, scalars: dict) -> tuple[list[int], list[tuple[int, int]]]:
        words, windows = [int(sizes[s.name]) & (2**64 - 1) for s in self.spec.sizes], []
        for a in self.spec.args:
            if a.kind == "scalar":
                words.append(scalar_word(a.dtype, scalars[a.name]))
                continue
            b = bufs[a.name]
            words.append(b.address)
            windows.append(b.window)
            if a.views:
                words += [int(s) & (2**64 - 1) for s in b.elem_strides]
        return words, windows

    def call(self, sizes: dict, bufs: dict, scalars: dict, repeat: int = 1) -> float:
        words, windows = self.words(sizes, bufs, scalars)
        try:
            self.last = self.cell.request(OP_CALL, words, self.threads, repeat,
                                          windows=windows if self.sanitizer else None)
        except CellDied as d:
            if d.reason == "sanitizer":
                d.log_tail = symbolize(d.log_tail, os.path.dirname(self.cell.exe))
                d.detail = (tsan_summary(d.log_tail) if "ThreadSanitizer" in d.detail
                            else sanitizer_summary(d.detail, d.log_tail))
            raise
        return self.last.seconds

    def ping(self) -> float:
        return self.cell.request(OP_PING).seconds

    def flush(self) -> None:
        self.cell.request(OP_FLUSH)

    def fp_state_changed(self) -> str | None:
        a = self.last
        if a is None or not (a.mxcsr_after ^ a.mxcsr_before) & MXCSR_CONTROL:  # the sticky flags may change
            return None
        what = []
        if (a.mxcsr_after ^ a.mxcsr_before) & MXCSR_FTZ_DAZ:
            what.append("flush-to-zero / denormals-are-zero")
        if (a.mxcsr_after ^ a.mxcsr_before) & 0x6000:
            what.append("rounding mode")
        if (a.mxcsr_after ^ a.mxcsr_before) & 0x1F80:
            what.append("exception masks")
        return ", ".join(what) or f"MXCSR {a.mxcsr_before:#x} -> {a.mxcsr_after:#x}"

    def close(self) -> None:
        self.cell.close()
        self.arena.close()
