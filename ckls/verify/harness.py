"""The judge's process: inputs, the Python original's reference values, the candidate's calls through the
cell, and every check. Only ever started by sandbox.Worker.

No candidate ever runs here: a C candidate runs in the cell (cell.py, cell/cell.c), a CUDA candidate in the CUDA
cell (cudacell.py, cell/cuda_cell.c), separate jailed processes that hold nothing but the kernel and the shared
arena where this process lays out each call's buffers. So no code of the candidate can reach this process's
objects, the original, the references or the comparison; this process never loads a candidate's code.

Protocol: one JSON request per line on stdin, one JSON answer per line on the file descriptor named in argv.
Requests:
  init  {spec, so, ref, numpy?, guard_pad, cell?, sanitizer? (true/"asan", "tsan"), timeout_s?, hold_s?, scribble?, cuda_sanitizer?}
                                               load the originals; start the cell
  case  {case}                                 one differential test case (see run_case)
  naive {sizes, seed, trials}                  the KernelBench-style check, for comparison only
  bench {sizes, seed, budget_s}                timings of kernel, original and NumPy version
  finish {}                                    CUDA under compute-sanitizer: end the cell, the tool's last word
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import time
import zlib

import numpy as np

from . import jail, seccomp
from .cell import CellDied, CellKernel
from .cudacell import CudaCallError
from .compare import allclose_naive, mismatch, same_bits
from .spec import KernelSpec, eval_expr
from .values import Buffer, family_values, perturb, scalar_value


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


class Judge:
    def __init__(self, req: dict):
        self.spec = KernelSpec.from_dict(req["spec"])
        self.cuda = self.spec.language == "cuda"
        jail.bwrap()  # no sandbox here: an error now, never a weaker judge
        why = seccomp.available()
        if why:
            raise seccomp.SeccompUnavailable(why)
        self.cuda_sanitizer = req.get("cuda_sanitizer")  # compute-sanitizer's command line, the cell run under it
        if self.cuda:
            from .cudacell import CudaCellKernel
            self.kernel = CudaCellKernel(self.spec, req["cell"], req["so"], os.path.abspath("cell.log"),
                                         float(req.get("timeout_s", 30.0)), arena_mb=int(req.get("arena_mb", 1024)),
                                         hold_s=float(req.get("hold_s", 1e-3)), scribble=bool(req.get("scribble", True)),
                                         wrapper=self.cuda_sanitizer)
        else:
            self.kernel = CellKernel(self.spec, req["cell"], req["so"], os.path.abspath("cell.log"),
                                     float(req.get("timeout_s", 30.0)), sanitizer=req.get("sanitizer") or False,
                                     arena_mb=int(req.get("arena_mb", 1024)), env=req.get("cell_env"))
        self.ref = load_function(req["ref"])
        self.numpy_fn = load_function(req["numpy"]) if req.get("numpy") else None
        self.pad = int(req.get("guard_pad", 16))
        self.settle_s = float(req.get("settle_s", 0.005))
        self.overlaps = self.spec.overlap_pairs()
        self._last_case = (None, None)
        self._sensitivity = (None, None)
        np.seterr(all="ignore")

    # ---- inputs and the reference --------------------------------------------------------------------
    def shapes(self, sizes):
        return {a.name: self.spec.shape_of(a, sizes) for a in self.spec.arrays}

    def new_values(self, rng, sizes, family, pattern="random", layout="contig", pinned=None):
        vals, scal = {}, {}
        for a in self.spec.inputs:
            if a.kind == "array":
                vals[a.name] = family_values(rng, family, self.spec.shape_of(a, sizes), a.np_dtype, a.range, pattern)
        if layout == "overlap":
            for name, first in self.overlaps.items():
                vals[name] = vals[first]
        data = next(iter(vals.values()), None)
        for a in self.spec.inputs:
            if a.kind == "scalar":
                scal[a.name] = scalar_value(rng, a.np_dtype, a.range, data)
        for name, v in (pinned or {}).items():  # the plan's scalars: 0, ±1, a range end, equal to another
            if v == "@data":  # a value of the data (the first input array's), kept inside the range
                finite = data[np.isfinite(data)] if data is not None and data.size else np.zeros(0)
                v = finite.reshape(-1)[rng.integers(finite.size)].item() if finite.size else scal[name]
                lo, hi = self.spec.arg(name).range or (v, v)
                v = v if lo <= v <= hi else scal[name]
            v = scal[v] if isinstance(v, str) else v
            kind = np.dtype(self.spec.arg(name).np_dtype).kind
            scal[name] = int(v) if kind in "iu" else float(self.spec.arg(name).np_dtype(v))
        return vals, scal

    def changed_arrays(self, rng, vals, family, layout):
        out = {}
        for a in self.spec.inputs:
            if a.kind == "array":
                out[a.name] = perturb(rng, vals[a.name], family, a.range)
        if layout == "overlap":
            for name, first in self.overlaps.items():
                out[name] = out[first]
        return out

    def changed_scalars(self, rng, vals, scal):
        data = next(iter(vals.values()), None)
        out = {}
        for a in self.spec.inputs:
            if a.kind == "scalar":
                v = scal[a.name]
                for _ in range(8):  # a different value where the range has one
                    v = scalar_value(rng, a.np_dtype, a.range, data)
                    if v != scal[a.name]:
                        break
                out[a.name] = v
        return out

    def sensitivity(self, sizes, vals, scal, want) -> dict:
        """Per output element, how far the reference moves when every float input moves by up to
        sensitivity_ulps(sizes) of its dtype (twice, the larger change, doubled): the error a backward-stable
        kernel may show where an output cancels (the variance of a constant row of huge values). Computed only
        for a mismatch."""
        key = (id(vals), id(scal))
        if self._sensitivity[0] == key:
            return self._sensitivity[1]
        rng = np.random.default_rng(0x5EED)
        out = {a.name: np.zeros(np.shape(want[a.name])) for a in self.spec.outputs}
        for _ in range(2):
            ulps = sensitivity_ulps(sizes)
            pv = {k: _nudge(rng, v, ulps) for k, v in vals.items()}
            ps = {k: _nudge(rng, np.asarray(v), ulps).item() if isinstance(v, float) else v for k, v in scal.items()}
            moved = self.reference(sizes, pv, ps)
            for name in out:
                with np.errstate(all="ignore"):
                    d = np.abs(np.asarray(moved[name], np.float64) - np.asarray(want[name], np.float64))
                out[name] = np.maximum(out[name], np.where(np.isfinite(d), 2 * d, 0.0))
        self._sensitivity = (key, out)
        return out

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
        """Buffers for one set of calls. aliased: inputs whose memory an output (or another input) shares."""
        bufs, shapes = {}, self.shapes(sizes)
        arena = getattr(self.kernel, "arena", None)
        for i, a in enumerate(self.spec.arrays):
            if (layout == "alias" and a.may_alias) or (layout == "overlap" and a.name in self.overlaps):
                continue
            ro = layout == "readonly" and a.role == "in" and arena is not None
            bufs[a.name] = Buffer(shapes[a.name], a.np_dtype, layout, self.pad, a.views, device=self.cuda,
                                  arena=arena, salt=i, readonly=ro)
        aliased = set()
        for a in self.spec.arrays:
            if a.name not in bufs:  # shares an earlier array's memory
                other = a.may_alias[0] if layout == "alias" and a.may_alias else self.overlaps[a.name]
                bufs[a.name] = bufs[other]
                aliased.add(other)
        return bufs, aliased

    # ---- one call, every check -----------------------------------------------------------------------
    def checked_call(self, what, sizes, bufs, aliased, vals, scal, want, zero_out=False, settle=True):
        """One call and every check on it; want = (references, input scale)."""
        spec = self.spec
        want, scale = want
        for a in spec.arrays:
            if a.role == "out":
                bufs[a.name].poison(zero=zero_out)
        for a in spec.arrays:
            if a.role in ("in", "inout"):
                bufs[a.name].array[...] = vals[a.name]
        sums = {a.name: _crc(bufs[a.name].array) for a in spec.arrays if a.role == "in" and a.name not in aliased}
        try:
            dt = self.kernel.call(sizes, bufs, scal)
        except CellDied as d:
            check = "harness_error" if d.reason == "start" else d.reason
            return _fail(check, what, d.detail, log_tail=d.log_tail)
        except CudaCallError as e:  # the CUDA cell's answer: the candidate's CUDA error
            return _fail("cuda_error", what, str(e))
        got = {a.name: np.array(bufs[a.name].array) for a in spec.outputs}  # snapshot right after return
        for name, b in bufs.items():
            if not b.guard_intact():
                return _fail("out_of_bounds_write", what, f"memory around {name} was written", name)
        for name, s in sums.items():
            if _crc(bufs[name].array) != s:
                return _fail("input_mutated", what, f"input {name} changed during the call", name)
        if not self.cuda:
            fp = self.kernel.fp_state_changed()
            if fp:
                return _fail("fp_state", what, f"left the floating-point control register changed ({fp}): the "
                             "caller's arithmetic would change after the call")
        for a in spec.outputs:
            rtol, atol = a.tolerance()
            m = mismatch(got[a.name], want[a.name], rtol, atol, scale)
            if m and a.is_float:  # held to what the reference itself does when its inputs move by a few ulps
                m = mismatch(got[a.name], want[a.name], rtol, atol, scale,
                             self.sensitivity(sizes, vals, scal, want)[a.name])
            if m:
                return _fail("wrong_result", what, f"{a.name}: {m['why']}", a.name, m)
        if self.settle_s and settle:
            time.sleep(self.settle_s)
            if self.cuda:
                try:
                    self.kernel.refresh(sizes, bufs, scal)
                except CellDied as d:
                    return _fail(d.reason, what + ", after the settle time", d.detail, log_tail=d.log_tail)
                except CudaCallError as e:
                    return _fail("cuda_error", what + ", after the settle time", str(e))
            for a in spec.outputs:
                m = same_bits(got[a.name], np.array(bufs[a.name].array))
                if m:
                    return _fail("late_write", what, f"{a.name} changed after the call returned", a.name, m)
        return {"ok": True, "got": got, "t": dt}

    def run_case(self, case: dict) -> dict:
        """Five calls. 1: fresh buffers. 2: the same buffers, one or two array elements changed (away from where a
        fingerprint would look), the scalars kept, outputs sometimes zero-filled. 3: the same arrays, other scalars. 4: the same again with
        the outputs re-poisoned (skipped work shows). 5: fresh buffers at new addresses with the fourth call's
        values, whose results must be bitwise equal to the fourth's when the spec says deterministic. A cache
        keyed on part of the input, on a pointer or on the scalars gives a stale answer somewhere."""
        sizes, layout = case["sizes"], case["layout"]
        self.kernel.set_threads(case.get("threads", 1))
        key = json.dumps({k: v for k, v in case.items() if k not in ("threads", "repeat", "tag")}, sort_keys=True)
        if self._last_case[0] != key:  # the same inputs at other thread counts reuse the references
            self._last_case = (key, self._timed_case_data(case) if case.get("optional") else self._case_data(case))
        if self._last_case[1] is None:
            return {"ok": True, "skipped": f"the original takes over {REFERENCE_BUDGET_S:.0f} s at sizes "
                                           f"{case['sizes']}: not compared there"}
        calls, wants = self._last_case[1]
        self._reset()
        res = self._calls(sizes, layout, calls, wants, int(case.get("repeat", 0)))
        if self.cuda_sanitizer:
            found = self.kernel_sanitizer_finding(ended=not res["ok"])
            if found:
                return _fail("sanitizer", "a call", found.splitlines()[0].strip(), log_tail=found)
        return res

    def _reset(self) -> None:
        reset = getattr(self.kernel, "reset", None)
        if reset is not None:
            reset()
        elif getattr(self.kernel, "arena", None) is not None:
            self.kernel.arena.reset()

    def kernel_sanitizer_finding(self, ended: bool) -> str:
        """compute-sanitizer's first error in the cell's log; ended: the call failed, so the cell is ended the
        polite way first (the tool writes its report as the cell ends)."""
        from .build import sanitizer_finding
        if ended:
            self.kernel.finish()
        return sanitizer_finding(self.kernel.cell.log_tail(64000))

    def finish(self) -> dict:
        """The end of a compute-sanitizer run: the cell ended, the tool's exit status and its report."""
        from .build import sanitizer_finding
        rc = self.kernel.finish() if self.cuda_sanitizer else None
        log = self.kernel.cell.log_tail(64000)
        return {"ok": True, "rc": rc, "finding": sanitizer_finding(log), "log": log[-3000:]}

    def _timed_case_data(self, case: dict):
        """_case_data within REFERENCE_BUDGET_S, or None: a big case the original itself is too slow for (a
        pure-Python matmul at the typical size) is skipped, not blamed on the candidate."""
        def stop(*_):
            raise _TooSlow

        old = signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, REFERENCE_BUDGET_S)
        try:
            return self._case_data(case)
        except _TooSlow:
            return None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def _case_data(self, case: dict):
        """The calls of a case (what, arrays, scalars, zero-filled outputs) and their references."""
        sizes, layout, family = case["sizes"], case["layout"], case["family"]
        pattern = case.get("pattern", "random")
        rng = np.random.default_rng(case["seed"])
        vals1, scal1 = self.new_values(rng, sizes, family, pattern, layout, case.get("scalars"))
        vals2 = self.changed_arrays(rng, vals1, family, layout)
        scal3 = self.changed_scalars(rng, vals2, scal1)
        zero2 = bool(rng.integers(2))
        calls = [("first call", vals1, scal1, False),
                 ("second call (same buffers, some array values changed, same scalars)", vals2, scal1, zero2)]
        if scal3:
            calls.append(("third call (same buffers and arrays, other scalars)", vals2, scal3, False))
        last = calls[-1]
        calls.append(("repeated call (same buffers and values, output re-poisoned)", last[1], last[2], False))
        wants = {}
        for _, vals, scal, _ in calls:  # the references first: nothing of the candidate has run yet
            if (id(vals), id(scal)) not in wants:
                wants[(id(vals), id(scal))] = (self.reference(sizes, vals, scal), _input_scale(vals, scal))
        return calls, wants

    def _calls(self, sizes, layout, calls, wants, repeat: int = 0) -> dict:
        bufs, aliased = self.allocate(sizes, layout)
        times, res = [], None
        for i, (what, vals, scal, zero) in enumerate(calls):
            # late writes are waited for after the first call and the re-poisoned one (where skipped work shows)
            res = self.checked_call(what, sizes, bufs, aliased, vals, scal, wants[(id(vals), id(scal))], zero,
                                    settle=i in (0, len(calls) - 1))
            if not res["ok"]:
                return res
            times.append(res["t"])
        vals, scal = calls[-1][1], calls[-1][2]
        for i in range(repeat):  # a race shows now and then: the same call again and again, each one compared
            r = self.checked_call(f"call {i + 1} of {repeat} repeats (same buffers and values)", sizes, bufs,
                                  aliased, vals, scal, wants[(id(vals), id(scal))], settle=False)
            if not r["ok"]:
                return r
        last = calls[-1]
        keep = bufs  # keep the old buffers alive so the new ones get new addresses
        bufs5, aliased5 = self.allocate(sizes, layout)
        r5 = self.checked_call("fifth call (fresh buffers, values of the fourth)", sizes, bufs5, aliased5,
                               last[1], last[2], wants[(id(last[1]), id(last[2]))])
        del keep
        if not r5["ok"]:
            return r5
        if self.spec.deterministic:
            for a in self.spec.outputs:
                m = same_bits(res["got"][a.name], r5["got"][a.name])
                if m:
                    return _fail("nondeterministic", "fifth call", f"{a.name}: {m['why']}", a.name, m)
        return {"ok": True, "t": times + [r5["t"]]}

    # ---- the naive check, for comparison ---------------------------------------------------------------
    def naive(self, req: dict) -> dict:
        """5 random normal inputs at one shape, contiguous fresh arrays, allclose(1e-2, 1e-2)."""
        sizes = req["sizes"]
        rng = np.random.default_rng(req["seed"])
        self.kernel.set_threads(os.cpu_count() or 1)
        for _ in range(int(req.get("trials", 5))):
            vals, scal = self.new_values(rng, sizes, "normal")
            want = self.reference(sizes, vals, scal)
            self._reset()
            bufs, _ = self.allocate(sizes, "contig")
            for a in self.spec.arrays:
                if a.role != "out":
                    bufs[a.name].array[...] = vals[a.name]
            try:
                self.kernel.call(sizes, bufs, scal)
            except (CellDied, CudaCallError):
                return {"ok": False, "check": "crash"}
            for a in self.spec.outputs:
                if not allclose_naive(bufs[a.name].array, want[a.name]):
                    return {"ok": False, "check": "allclose"}
        return {"ok": True}

    # ---- timing ----------------------------------------------------------------------------------------
    def bench(self, req: dict) -> dict:
        """Kernel times on this process's clock, request to answer, less the median round trip of an empty
        request; caches flushed in the cell before each timed call."""
        if self.cuda:
            from .gpu import bench_cuda
            return bench_cuda(self, req)
        from .bench import summarize, time_calls
        sizes, budget = req["sizes"], float(req.get("budget_s", 2.0))
        k = self.kernel
        k.set_threads(int(req.get("threads", os.cpu_count() or 1)))
        rng = np.random.default_rng(req["seed"])
        vals, scal = self.new_values(rng, sizes, "normal")
        k.arena.reset()
        bufs, _ = self.allocate(sizes, "contig")
        for a in self.spec.arrays:
            if a.role != "out":
                bufs[a.name].array[...] = vals[a.name]
        trips = [k.ping() for _ in range(21)]
        trip = float(np.median(trips))

        def one():
            k.flush()
            trips.append(k.ping())  # round trips sampled all through the timing, for their spread below
            return max(k.call(sizes, bufs, scal) - trip, 1e-9)

        f64 = [scal[a.name] if a.kind == "scalar" else
               (vals[a.name].astype(np.float64) if a.is_float else vals[a.name]) for a in self.spec.inputs]
        native = [scal[a.name] if a.kind == "scalar" else vals[a.name] for a in self.spec.inputs]
        res = {"kernel": summarize(time_calls(one, budget * 0.5, timed_by_fn=True))}
        # how much less than the median a round trip can take: a kernel time is only known to within this
        res["kernel"]["trip_spread_s"] = trip - float(np.min(trips))
        res["original"] = summarize(time_calls(lambda: self.ref(*f64), budget * 0.3, max_runs=50))
        if self.numpy_fn is not None:
            res["numpy"] = summarize(time_calls(lambda: self.numpy_fn(*native), budget * 0.2))
        return {"ok": True, "timings": res}

    def close(self) -> None:
        close = getattr(self.kernel, "close", None)
        if close:
            close()


REFERENCE_BUDGET_S = 10.0  # an optional (big) case whose references take longer is skipped


class _TooSlow(Exception):
    pass


SENSITIVITY_ULPS = 16  # at least: the backward error of a sum over a few dozen terms, in ulps


def sensitivity_ulps(sizes: dict) -> int:
    """How far (in ulps) to move the inputs: a backward-stable sum of n terms may show the error of inputs moved
    by up to n ulps, and no reduction of a call is longer than its largest size (the variance of a constant row
    of 128 huge values, summed in another order than NumPy's, needs ~128)."""
    return max([SENSITIVITY_ULPS] + [int(n) for n in sizes.values() if isinstance(n, (int, np.integer))])


def _nudge(rng, v: np.ndarray, ulps: int = SENSITIVITY_ULPS) -> np.ndarray:
    """v with each float element moved by up to `ulps` units of its dtype's epsilon (relative)."""
    v = np.asarray(v)
    if v.dtype.kind != "f" or v.size == 0:
        return v
    eps = float(np.finfo(v.dtype).eps)
    with np.errstate(all="ignore"):
        return (v.astype(np.float64) * (1 + ulps * eps * rng.uniform(-1, 1, v.shape))).astype(v.dtype)


def _input_scale(vals: dict, scal: dict) -> float:
    """The largest finite |value| among the float inputs of a call (arrays and scalars)."""
    m = 0.0
    for v in list(vals.values()) + [np.asarray(x) for x in scal.values()]:
        v = np.asarray(v)
        if v.dtype.kind == "f" and v.size:
            f = np.abs(v[np.isfinite(v)])
            if f.size:
                m = max(m, float(f.max()))
    return m


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(a)).cast("B")) if a.size else 0


def _fail(check, call, detail, arg=None, m=None, log_tail=None):
    out = {"ok": False, "check": check, "call": call, "detail": detail, "arg": arg}
    if m:
        out["mismatch"] = m
    if log_tail:
        out["log_tail"] = log_tail
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
            elif op == "finish":
                res = judge.finish()
            elif op == "sizes":
                res = {"ok": True, "values": {k: eval_expr(v, req["sizes"]) for k, v in req["exprs"].items()}}
            else:
                res = {"ok": False, "check": "protocol", "detail": f"unknown op {op}"}
        except Exception as e:  # the reference or the spec, not the kernel: reported as an error
            res = {"ok": False, "check": "harness_error", "detail": f"{type(e).__name__}: {e}"}
        res["nonce"] = req.get("nonce")
        answers.write(json.dumps(res) + "\n")
    if judge is not None:
        judge.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
