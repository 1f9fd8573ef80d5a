"""The judge's side of the CUDA cell (cell/cuda_cell.c): building it for a contract, starting it in the jail with
the GPU, and one call.

The C cell's design carried over: the judge lays out a call's buffers (each in its guard band) in the shared
arena, and the cell, the only process that ever loads a CUDA candidate, keeps a device allocation per buffer,
uploads each buffer whole, calls the launcher with the device pointers, and downloads each buffer whole on the
legacy default stream right after the launcher returns. The judge then reads the arena itself: results, guards,
inputs, and after the settle time (OP_REFRESH: the device synchronised, everything downloaded again) late writes.
Times come from the judge's clock, request to answer; the CUDA events the cell reports are shown, never used.

The jail is the C cell's with the NVIDIA device nodes, a read-only /sys, its own /proc (the driver reads
/proc/driver/nvidia and /proc/self) in its own PID namespace, and the driver's folder read-only. See
docs/verify.md for what the driver needs and the three seccomp stages (seccomp.cuda_programs).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from . import jail, seccomp
from .cell import CELL_SOURCE, OP_PING, Answer, Arena, Cell, CellDied, CellKernel, compile_cell, stub_source
from .cudadrv import _SCRIBBLE_PTX, STICKY, driver_library, error_name
from .spec import KernelSpec
from .values import Buffer

CUDA_CELL_SOURCE = CELL_SOURCE.parent / "cuda_cell.c"
OP_CALL, OP_FLUSH, OP_REFRESH, OP_RESET = 1, 3, 5, 6
FLAG_NOCOPY, FLAG_SCRIBBLE, FLAG_HOLD, FLAG_SYNC = 2, 4, 8, 16
STEPS = {1: "allocating the device buffers", 2: "copying the inputs to the device", 3: "preparing the call",
         4: "the call", 5: "copying the results back", 6: "waiting for the device", 7: "flushing L2"}
WARM_BYTES = 16 << 20  # the arena's tail, where the warm-up call's buffers live


def cuda_stub_source(spec: KernelSpec) -> str:
    """stub.h of the CUDA cell: the C cell's call, and the judge's PTX as a string."""
    ptx = _SCRIBBLE_PTX.rstrip(b"\x00").decode()
    lines = ["static const char judge_ptx[] ="]
    lines += ['    "' + ln.replace("\\", "\\\\").replace('"', '\\"') + '\\n"' for ln in ptx.splitlines()]
    return stub_source(spec) + "\n".join(lines) + ";\n"


def build_cuda_cell(spec: KernelSpec, workdir: str | Path, cc: str = "gcc",
                    survey: int = 0) -> tuple[str | None, str]:
    """Compile the CUDA cell for this contract; (path, log). Plain C: the driver is loaded with dlopen, so
    neither the toolkit nor a GPU is needed to build it. survey: 1 or 2, the diagnostic builds of
    bench/cuda_survey.py (cell/cell_trace.h: refusals logged and answered, or every call traced), never used for a
    verdict."""
    workdir = Path(workdir)
    stub = cuda_stub_source(spec)
    (workdir / "stub.h").write_text(stub)
    exe = workdir / (f"cell_cuda_survey{survey}" if survey else "cell_cuda")
    flags = ["-std=gnu11", "-O2", "-Wall", "-Wl,-z,relro,-z,now"] + ([f"-DCELL_SURVEY={survey}"] if survey else [])
    return compile_cell(CUDA_CELL_SOURCE, stub, exe, flags, cc, "CUDA cell")


def jail_command(inner: list[str], cell_dir: str, driver: str, env: dict, wrapper: list[str] | None = None,
                 exe: str | None = None) -> list[str]:
    """The bwrap command of a CUDA cell: the C cell's jail with the GPU, the driver's folder, and (for
    compute-sanitizer) the tool's folder, all read-only."""
    ro = {cell_dir: "/cell"}
    for p in (driver, os.path.realpath(driver)):  # /usr is in the jail already (the driver's libraries may not be)
        d = os.path.dirname(p)
        if not d.startswith("/usr/"):
            ro[d] = d
    argv = list(inner)
    if wrapper:
        tool = os.path.realpath(shutil.which(wrapper[0]) or wrapper[0])
        if not tool.startswith("/usr/"):  # the toolkit's root (compute-sanitizer/ and bin/ sit in it)
            root = str(Path(tool).parent.parent)
            ro[root] = root
        argv = [tool, *wrapper[1:], *inner]
    return jail.command(argv, ro=ro, env=env, exe=exe, setuid=True, proc=True, gpu=True, open_tmp=bool(wrapper))


class CudaCell(Cell):
    """A running CUDA cell: three seccomp stages, and a warm-up call before the judge's first."""

    n_filters = 3

    def __init__(self, exe: str, so_path: str, arena: Arena, log_path: str, timeout_s: float, driver: str,
                 hold_us: float = 1000.0, wrapper: list[str] | None = None, warm=None):
        super().__init__(exe, so_path, arena, log_path, timeout_s, sanitizer=bool(wrapper))
        self.driver, self.hold_us, self.wrapper, self.warm = driver, hold_us, list(wrapper or []), warm

    def _argv(self) -> list[str]:
        inner = ["/cell/" + os.path.basename(self.exe), "/cell/" + os.path.basename(self.so), hex(self.arena.addr),
                 str(self.arena.nbytes), self.driver, repr(float(self.hold_us))]
        env = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": os.path.dirname(self.driver),
               # modules loaded when the runtime starts (in the warm-up call), no JIT cache on disk
               "CUDA_MODULE_LOADING": "EAGER", "CUDA_CACHE_DISABLE": "1"}
        return jail_command(inner, os.path.dirname(self.exe), self.driver, env, self.wrapper)

    def _programs(self, arena, pid):
        return seccomp.cuda_programs(arena, pid, sanitizer=bool(self.wrapper))

    def _started(self) -> None:
        """The warm-up: one small call with valid arguments, under stage 2, so that the CUDA runtime inside the
        candidate starts (and loads its modules) before the strictest filter holds. Its results are not
        looked at; the cell installs stage 3 before it answers."""
        words, windows = self.warm() if self.warm else ([], [])
        a = self.request(OP_CALL, words, windows=windows, flags=0, timeout=max(self.timeout_s, 10.0), what="start")
        if a.status:  # the candidate's doing: only its code ran on the device
            self.close()
            raise CellDied("cuda_error", f"the warm-up call (small valid arguments, before the judge's first) "
                           f"failed: {error_name(a.status)} ({a.status}) during {STEPS.get(a.mxcsr_before, '?')}",
                           self.log_tail())
        self.request(OP_RESET, what="start")

    def finish(self, timeout: float = 120.0) -> int | None:
        """End the cell the polite way (end of requests), so the tool it runs under writes its summary; its
        exit status, or None when it had to be killed."""
        if self.proc is None:
            return None
        rc = jail.end_politely(self.proc, lambda: os.close(self.req_w), timeout)
        self.close()
        return rc


class CudaCallError(Exception):
    def __init__(self, code: int, step: int):
        super().__init__(f"{error_name(code)} ({code}) during {STEPS.get(step, 'the call')}")
        self.code, self.step = code, step


class CudaCellKernel(CellKernel):
    """The contract's calls through a CUDA cell. Buffers live in its arena; each is mirrored whole on the
    device."""

    def __init__(self, spec: KernelSpec, exe: str, so_path: str, log_path: str, timeout_s: float,
                 arena_mb: int = 1024, hold_s: float = 1e-3, scribble: bool = True, wrapper: list[str] | None = None):
        self.spec, self.sanitizer = spec, bool(wrapper)
        driver = driver_library()
        if driver is None:
            raise CellDied("start", "the CUDA driver (libcuda.so.1) was not found")
        self.arena = Arena((arena_mb << 20) + WARM_BYTES)
        self.arena.limit = self.arena.nbytes - WARM_BYTES
        self.cell = CudaCell(exe, so_path, self.arena, log_path, timeout_s, driver, hold_s * 1e6, wrapper,
                             warm=self._warm_call)
        self.flags = (FLAG_SCRIBBLE if scribble else 0) | (FLAG_HOLD if hold_s else 0)
        self.threads = 1
        self.last: Answer | None = None

    # ---- buffers -------------------------------------------------------------------------------------
    def words(self, sizes: dict, bufs: dict, scalars: dict) -> tuple[list[int], list[tuple[int, int]]]:
        """Argument words (element 0 of each array as an arena address) and, per array, its whole guarded
        buffer: what is mirrored on the device."""
        words, windows = super().words(sizes, bufs, scalars)
        windows = []
        for a in self.spec.args:
            if a.kind == "array":
                b = bufs[a.name]
                lo = b.arena.address(b.arena_offset)
                windows.append((lo, lo + b.base.nbytes))
        return words, windows

    def _warm_call(self):
        """Arguments of the warm-up call: each size at tile+1 (its minimum where that does not fit), inputs 1
        (or their range's low end), in the arena's tail."""
        tail = _Tail(self.arena, self.arena.limit)
        for pick in (lambda s: min(max(s.tile + 1, s.min), s.max), lambda s: s.min):
            sizes = {s.name: pick(s) for s in self.spec.sizes}
            tail.top = 0
            try:
                bufs = {a.name: Buffer(self.spec.shape_of(a, sizes), a.np_dtype, "contig", 16, a.views, device=True,
                                       arena=tail, salt=i) for i, a in enumerate(self.spec.arrays)}
                break
            except MemoryError:
                continue
        else:
            raise CellDied("start", "the warm-up call's buffers do not fit")
        scalars = {}
        for a in self.spec.args:
            one = a.range[0] if a.range else 1
            if a.kind == "scalar":
                scalars[a.name] = one
            elif a.role != "out":
                bufs[a.name].array[...] = one
        return self.words(sizes, bufs, scalars)

    # ---- calls ---------------------------------------------------------------------------------------
    def _request(self, op: int, sizes, bufs, scalars, flags: int, what: str = "call") -> Answer:
        words, windows = self.words(sizes, bufs, scalars)
        a = self.cell.request(op, words, 1, 1, windows=windows, flags=flags, what=what)
        if a.status:
            if a.status in STICKY or a.status == 999:  # the context is gone: a fresh cell next time
                self.close_cell()
            raise CudaCallError(a.status, a.mxcsr_before)
        return a

    def call(self, sizes: dict, bufs: dict, scalars: dict, repeat: int = 1, flags: int | None = None) -> float:
        """Upload, call, download. Raises CudaCallError (the candidate's CUDA error) or CellDied."""
        self.last = self._request(OP_CALL, sizes, bufs, scalars, self.flags if flags is None else flags)
        return self.last.seconds

    def refresh(self, sizes: dict, bufs: dict, scalars: dict) -> None:
        """After the settle time: the device synchronised, every buffer downloaded again (late writes show)."""
        self._request(OP_REFRESH, sizes, bufs, scalars, 0, "refresh")

    def reset(self) -> None:
        """A new case: the arena from the start, the device mirrors freed (new buffers get new allocations)."""
        self.arena.reset()
        if self.cell.proc is not None:
            self.cell.request(OP_RESET)

    def flush(self) -> None:
        a = self.cell.request(OP_FLUSH)
        if a.status:
            raise CudaCallError(a.status, a.mxcsr_before)

    def fp_state_changed(self) -> str | None:
        return None  # the launcher's host code touches no floating-point state the judge shares

    def close_cell(self) -> None:
        if self.sanitizer:
            self.cell.finish()
        else:
            self.cell.close()

    def finish(self, timeout: float = 120.0) -> int | None:
        return self.cell.finish(timeout)


class _Tail:
    """An allocator over the arena's tail (the warm-up call's buffers), addressed like the arena."""

    def __init__(self, arena: Arena, start: int):
        self.arena, self.start, self.top = arena, start, 0

    def alloc(self, nbytes: int, align: int = 64):
        off = self.start + (self.top + align - 1) // align * align
        if off + nbytes > self.arena.nbytes:
            raise MemoryError("the warm-up buffers do not fit")
        self.top = off + nbytes - self.start
        return self.arena.bytes[off:off + nbytes], off

    def address(self, offset: int, readonly: bool = False) -> int:
        return self.arena.address(offset)


def ping_seconds(kernel: CudaCellKernel, n: int = 21) -> float:
    """The median round trip of an empty request, judge's clock."""
    return float(np.median([kernel.cell.request(OP_PING).seconds for _ in range(n)]))

