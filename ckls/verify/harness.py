"""The child process that loads and runs a candidate kernel. Only ever started by sandbox.Worker.

Protocol: one JSON request per line on stdin, one JSON answer per line on the file descriptor named in argv
(stdout is pointed at stderr so whatever the kernel prints cannot corrupt the answers). Requests:
  init  {spec, so, ref, numpy?, guard_pad}     load the kernel (cffi ABI mode; CUDA: gpu.CudaKernel) and the
                                               Python originals
  case  {case}                                 one differential test case (see run_case)
  naive {sizes, seed, trials}                  the KernelBench-style check, for comparison only
  bench {sizes, seed, budget_s}                timings of kernel, original and NumPy version
"""
from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import sys
import time
import zlib

import numpy as np

from .compare import allclose_naive, mismatch, same_bits
from .spec import KernelSpec, eval_expr
from .values import Buffer, family_values, scalar_value


def load_function(ref: str):
    """Import "path.py::func" as a fresh module and return the function."""
    path, _, func = ref.rpartition("::")
    if not path or not func:
        raise ValueError(f"expected path.py::function, got {ref!r}")
    path = os.path.abspath(path)
    sys.path.insert(0, os.path.dirname(path))
    name = "_ckls_ref_" + str(abs(hash(path)))
    mspec = importlib.util.spec_from_file_location(name, path)
    if mspec is None or mspec.loader is None:
        raise ImportError(f"cannot import {path}")
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    return getattr(mod, func)


class Kernel:
    def __init__(self, spec: KernelSpec, so_path: str):
        import cffi
        self.spec = spec
        self.ffi = cffi.FFI()
        self.ffi.cdef(spec.c_prototype() + ";")
        self.lib = self.ffi.dlopen(so_path)
        self.fn = getattr(self.lib, spec.name)
        try:
            self._omp = ctypes.CDLL("libgomp.so.1")
        except OSError:
            self._omp = None

    def set_threads(self, n: int) -> None:
        if self._omp is not None and n > 0:
            self._omp.omp_set_num_threads(int(n))

    def call(self, sizes: dict, bufs: dict, scalars: dict) -> float:
        args = [int(sizes[s.name]) for s in self.spec.sizes]
        for a in self.spec.args:
            if a.kind == "scalar":
                args.append(scalars[a.name])
                continue
            b = bufs[a.name]
            args.append(self.ffi.cast(f"{a.ctype} *", b.address))
            if a.views:
                args += list(b.elem_strides)
        t0 = time.perf_counter()
        self.fn(*args)
        return time.perf_counter() - t0


class Judge:
    def __init__(self, req: dict):
        self.spec = KernelSpec.from_dict(req["spec"])
        self.cuda = self.spec.language == "cuda"
        if self.cuda:
            from .gpu import CudaKernel
            self.kernel = CudaKernel(self.spec, req["so"])
            self.kernel.scribble = bool(req.get("scribble", True))
            self.kernel.hold_s = float(req.get("hold_s", 1e-3))
        else:
            self.kernel = Kernel(self.spec, req["so"])
        self.ref = load_function(req["ref"])
        self.numpy_fn = load_function(req["numpy"]) if req.get("numpy") else None
        self.pad = int(req.get("guard_pad", 16))
        self.settle_s = float(req.get("settle_s", 0.005))
        np.seterr(all="ignore")

    # ---- inputs and the reference --------------------------------------------------------------------
    def shapes(self, sizes):
        return {a.name: self.spec.shape_of(a, sizes) for a in self.spec.arrays}

    def new_values(self, rng, sizes, family):
        vals, scal = {}, {}
        for a in self.spec.inputs:
            if a.kind == "scalar":
                scal[a.name] = scalar_value(rng, a.np_dtype, a.range)
            else:
                shape = self.spec.shape_of(a, sizes)
                vals[a.name] = family_values(rng, family, shape, a.np_dtype, a.range)
        return vals, scal

    def reference(self, sizes, vals, scal):
        args = []
        for a in self.spec.inputs:
            if a.kind == "scalar":
                args.append(scal[a.name])
            else:
                v = vals[a.name]
                args.append(v.astype(np.float64) if a.is_float else v.astype(np.int64))
        out = self.ref(*args)
        outs = self.spec.outputs
        if len(outs) == 1:
            out = (out,)
        if not isinstance(out, (tuple, list)) or len(out) != len(outs):
            raise TypeError(f"reference returned {type(out).__name__}, expected {len(outs)} output(s)")
        res = {}
        for a, o in zip(outs, out):
            o = np.asarray(o, dtype=np.float64 if a.is_float else np.int64)
            shape = self.spec.shape_of(a, sizes)
            if o.shape != shape:
                o = np.broadcast_to(o, shape) if o.size == 1 or o.shape == () else o
            if o.shape != shape:
                raise ValueError(f"reference output {a.name} has shape {o.shape}, spec says {shape}")
            res[a.name] = o
        return res

    def allocate(self, sizes, layout):
        bufs, shapes = {}, self.shapes(sizes)
        for a in self.spec.arrays:
            if layout == "alias" and a.may_alias:
                continue
            bufs[a.name] = Buffer(shapes[a.name], a.np_dtype, layout, self.pad, a.views, device=self.cuda)
        aliased = set()
        for a in self.spec.arrays:
            if a.name not in bufs:  # this output shares its input's memory
                bufs[a.name] = bufs[a.may_alias[0]]
                aliased.add(a.may_alias[0])
        return bufs, aliased

    # ---- one call, every check -----------------------------------------------------------------------
    def checked_call(self, what, sizes, bufs, aliased, vals, scal, want):
        spec = self.spec
        for a in spec.arrays:
            if a.role == "out":
                bufs[a.name].poison()
        for a in spec.arrays:
            if a.role in ("in", "inout"):
                bufs[a.name].array[...] = vals[a.name]
        sums = {a.name: _crc(bufs[a.name].array) for a in spec.arrays if a.role == "in" and a.name not in aliased}
        if self.cuda:
            from .cudadrv import CudaError
            from .gpu import cuda_failure
            try:
                dt = self.kernel.call(sizes, bufs, scal)
            except CudaError as e:
                return cuda_failure(e, what)
        else:
            dt = self.kernel.call(sizes, bufs, scal)
        got = {a.name: np.array(bufs[a.name].array) for a in spec.outputs}  # snapshot right after return
        for a in spec.arrays:
            if not bufs[a.name].guard_intact():
                return _fail("out_of_bounds_write", what, f"memory around {a.name} was written", a.name)
        for name, s in sums.items():
            if _crc(bufs[name].array) != s:
                return _fail("input_mutated", what, f"input {name} changed during the call", name)
        for a in spec.outputs:
            rtol, atol = a.tolerance()
            m = mismatch(got[a.name], want[a.name], rtol, atol)
            if m:
                return _fail("wrong_result", what, f"{a.name}: {m['why']}", a.name, m)
        if self.settle_s:
            time.sleep(self.settle_s)
            if self.cuda:
                try:
                    self.kernel.refresh(bufs)
                except CudaError as e:
                    return cuda_failure(e, what + ", after the settle time")
            for a in spec.outputs:
                m = same_bits(got[a.name], np.array(bufs[a.name].array))
                if m:
                    return _fail("late_write", what, f"{a.name} changed after the call returned", a.name, m)
        return {"ok": True, "got": got, "t": dt}

    def run_case(self, case: dict) -> dict:
        """Four calls: fresh buffers; the same buffers with new values; the same again (outputs re-poisoned,
        so skipped work shows); fresh buffers with the second call's values, whose results must be bitwise
        equal to the second's when the spec says deterministic."""
        sizes, layout, family = case["sizes"], case["layout"], case["family"]
        self.kernel.set_threads(case.get("threads", 1))
        rng = np.random.default_rng(case["seed"])
        vals1, scal1 = self.new_values(rng, sizes, family)
        vals2, scal2 = self.new_values(rng, sizes, family)
        want1 = self.reference(sizes, vals1, scal1)
        want2 = self.reference(sizes, vals2, scal2)
        bufs, aliased = self.allocate(sizes, layout)
        try:
            return self._four_calls(sizes, layout, bufs, aliased, vals1, scal1, want1, vals2, scal2, want2)
        except Exception as e:  # noqa: BLE001 - once the candidate has run, a failing harness is its doing
            return _fail("crash_after_call", "a call", f"the judge's process failed after the candidate ran "
                         f"({type(e).__name__}: {e}): memory outside its buffers was probably overwritten")

    def _four_calls(self, sizes, layout, bufs, aliased, vals1, scal1, want1, vals2, scal2, want2) -> dict:
        r = self.checked_call("first call", sizes, bufs, aliased, vals1, scal1, want1)
        if not r["ok"]:
            return r
        times = [r["t"]]
        r2 = self.checked_call("second call (same buffers, new values)", sizes, bufs, aliased, vals2, scal2, want2)
        if not r2["ok"]:
            return r2
        r2b = self.checked_call("repeated call (same buffers, same values, output re-poisoned)", sizes, bufs,
                                aliased, vals2, scal2, want2)
        if not r2b["ok"]:
            return r2b
        keep = bufs  # keep the old buffers alive so the new ones get new addresses
        bufs3, aliased3 = self.allocate(sizes, layout)
        r3 = self.checked_call("third call (fresh buffers, values of the second)", sizes, bufs3, aliased3,
                               vals2, scal2, want2)
        del keep
        if not r3["ok"]:
            return r3
        if self.spec.deterministic:
            for a in self.spec.outputs:
                m = same_bits(r2["got"][a.name], r3["got"][a.name])
                if m:
                    return _fail("nondeterministic", "third call", f"{a.name}: {m['why']}", a.name, m)
        return {"ok": True, "t": times + [r2["t"], r2b["t"], r3["t"]]}

    # ---- the naive check, for comparison ---------------------------------------------------------------
    def naive(self, req: dict) -> dict:
        """5 random normal inputs at one shape, contiguous fresh arrays, allclose(1e-2, 1e-2)."""
        sizes = req["sizes"]
        rng = np.random.default_rng(req["seed"])
        self.kernel.set_threads(os.cpu_count() or 1)
        for _ in range(int(req.get("trials", 5))):
            vals, scal = self.new_values(rng, sizes, "normal")
            want = self.reference(sizes, vals, scal)
            bufs = {}
            for a in self.spec.arrays:  # fresh, uninitialised, 64-byte aligned like a tensor allocator's
                arr = _aligned_empty(self.spec.shape_of(a, sizes), a.np_dtype)
                if a.role != "out":
                    arr[...] = vals[a.name]
                bufs[a.name] = _Plain(arr)
            self.kernel.call(sizes, bufs, scal)
            for a in self.spec.outputs:
                if not allclose_naive(bufs[a.name].array, want[a.name]):
                    return {"ok": False, "check": "allclose"}
        return {"ok": True}

    # ---- timing ----------------------------------------------------------------------------------------
    def bench(self, req: dict) -> dict:
        if self.cuda:
            from .gpu import bench_cuda
            return bench_cuda(self, req)
        from .bench import summarize, time_calls
        sizes, budget = req["sizes"], float(req.get("budget_s", 2.0))
        self.kernel.set_threads(int(req.get("threads", os.cpu_count() or 1)))
        rng = np.random.default_rng(req["seed"])
        vals, scal = self.new_values(rng, sizes, "normal")
        bufs, _ = self.allocate(sizes, "contig")
        for a in self.spec.arrays:
            if a.role != "out":
                bufs[a.name].array[...] = vals[a.name]
        f64 = [scal[a.name] if a.kind == "scalar" else
               (vals[a.name].astype(np.float64) if a.is_float else vals[a.name]) for a in self.spec.inputs]
        native = [scal[a.name] if a.kind == "scalar" else vals[a.name] for a in self.spec.inputs]
        res = {"kernel": summarize(time_calls(lambda: self.kernel.call(sizes, bufs, scal), budget * 0.5))}
        res["original"] = summarize(time_calls(lambda: self.ref(*f64), budget * 0.3, max_runs=50))
        if self.numpy_fn is not None:
            res["numpy"] = summarize(time_calls(lambda: self.numpy_fn(*native), budget * 0.2))
        return {"ok": True, "timings": res}


class _Plain:
    """A bare contiguous NumPy array, no guards (the naive check's memory)."""

    def __init__(self, arr):
        self.array = arr
        self.address = arr.ctypes.data
        self.elem_strides = tuple(s // arr.itemsize for s in arr.strides)


def _aligned_empty(shape, dtype, align=64):
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(n * dtype.itemsize + align, np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + n * dtype.itemsize].view(dtype).reshape(shape)


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8).tobytes()) if a.size else 0


def _fail(check, call, detail, arg=None, m=None):
    out = {"ok": False, "check": check, "call": call, "detail": detail, "arg": arg}
    if m:
        out["mismatch"] = m
    return out


def _strip(r: dict) -> dict:
    return {k: v for k, v in r.items() if k != "got"}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out_fd = int(argv[0])
    os.dup2(2, 1)  # the kernel's printf goes to the log, never into the answers
    answers = os.fdopen(out_fd, "w", buffering=1)
    judge = None
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "init":
                judge = Judge(req)
                res = {"ok": True, "pid": os.getpid()}
            elif op == "case":
                res = _strip(judge.run_case(req["case"]))
            elif op == "naive":
                res = judge.naive(req)
            elif op == "bench":
                res = judge.bench(req)
            elif op == "sizes":
                res = {"ok": True, "values": {k: eval_expr(v, req["sizes"]) for k, v in req["exprs"].items()}}
            else:
                res = {"ok": False, "check": "protocol", "detail": f"unknown op {op}"}
        except Exception as e:  # the reference or the spec, not the kernel: reported as an error
            res = {"ok": False, "check": "harness_error", "detail": f"{type(e).__name__}: {e}"}
        res["nonce"] = req.get("nonce")
        answers.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
