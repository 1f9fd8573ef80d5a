"""Putting a verified kernel into the user's project.

For ops.py::axpy it adds, beside ops.py:
  ops_axpy_ckls.c (or .cu)      the kernel
  ops_axpy_ckls.spec.json       its contract
  ops_axpy_ckls.py              a thin cffi wrapper: builds the kernel once per machine, calls it when the inputs
                                match the contract exactly, else returns NotImplemented
  test_ops_axpy_ckls.py         a pytest that re-verifies the kernel with ckls verify and checks the dispatch
and edits ops.py: the function gets a decorator that dispatches to the kernel, and `axpy_reference` names the
untouched Python original (what the judge compares against, and the fallback). The same plan becomes an LSP
WorkspaceEdit (ckls.applyKernel) or is written to disk (ckls kernel --apply). Without a PASS nothing is
applied unless forced.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ckls.verify.spec import KernelSpec

from .target import find_target
from .task import KernelTask

MARK = "# ckls kernel:"


class ApplyError(ValueError):
    pass


@dataclass
class Insert:
    line: int    # 0-based; the text goes in at column 0 of this line
    text: str


@dataclass
class Plan:
    creates: dict[str, str] = field(default_factory=dict)   # path -> content
    edits: dict[str, list[Insert]] = field(default_factory=dict)
    originals: dict[str, str] = field(default_factory=dict)  # path -> text the edits apply to

    def write(self) -> list[str]:
        for path, text in self.creates.items():
            Path(path).write_text(text)
        for path, ins in self.edits.items():
            Path(path).write_text(apply_inserts(self.originals[path], ins))
        return list(self.creates) + list(self.edits)

    def workspace_edit(self) -> dict:
        """The plan as an LSP WorkspaceEdit (documentChanges), plain JSON."""
        changes = []
        for path, text in self.creates.items():
            uri = Path(path).resolve().as_uri()
            changes.append({"kind": "create", "uri": uri, "options": {"overwrite": True}})
            changes.append({"textDocument": {"uri": uri, "version": None}, "edits": [
                {"range": _range(0, 0), "newText": text}]})
        for path, ins in self.edits.items():
            changes.append({"textDocument": {"uri": Path(path).resolve().as_uri(), "version": None},
                            "edits": [{"range": _range(i.line, i.line), "newText": i.text} for i in ins]})
        return {"documentChanges": changes}


def _range(l0: int, l1: int) -> dict:
    return {"start": {"line": l0, "character": 0}, "end": {"line": l1, "character": 0}}


def apply_inserts(text: str, inserts: list[Insert]) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for line in sorted({i.line for i in inserts}, reverse=True):  # same line: in list order, as LSP does
        lines[line:line] = [i.text for i in inserts if i.line == line]
    return "".join(lines)


def names_for(py_path: str, func: str) -> dict:
    stem = re.sub(r"\W", "_", Path(py_path).stem)
    mod = f"{stem}_{func}_ckls"
    return {"module": mod, "dir": Path(py_path).resolve().parent, "test": f"test_{mod}.py"}


def size_sources(spec: KernelSpec) -> dict[str, tuple[str, int]]:
    """size -> (input array, dimension) it can be read from; a size no input shows alone is an error."""
    out = {}
    for s in spec.sizes:
        for a in spec.inputs:
            if a.kind == "array" and s.name in a.shape:
                out[s.name] = (a.name, a.shape.index(s.name))
                break
        else:
            raise ApplyError(f"size {s.name} is not the plain length of any input dimension, so the wrapper "
                             "cannot read it from the arguments")
    return out


def plan_apply(task: KernelTask, source: str, lang: str, *, verdict: str | None, force: bool = False,
               report_text: str = "", py_text: str | None = None) -> Plan:
    if verdict != "PASS" and not force:
        raise ApplyError(f"the kernel's verdict is {verdict or 'unknown'}, not PASS: nothing applied "
                         "(force it to apply anyway)")
    spec = task.spec
    size_sources(spec)
    py = task.py_path
    text = py_text if py_text is not None else Path(py).read_text()
    tgt = find_target(py, text, name=task.func_name)
    n = names_for(py, task.func_name)
    d, mod = n["dir"], n["module"]
    ext = ".cu" if lang == "cuda" else ".c"
    spec_d = spec.to_dict()
    spec_d["language"] = lang
    spec_d["numpy"] = None  # the benchmark's NumPy version is the author's business, not the applied test's
    plan = Plan(originals={py: text})
    plan.creates[str(d / (mod + ext))] = source if source.endswith("\n") else source + "\n"
    plan.creates[str(d / (mod + ".spec.json"))] = json.dumps(spec_d, indent=2) + "\n"
    plan.creates[str(d / (mod + ".py"))] = wrapper_source(task, mod, ext, lang, verdict, force)
    plan.creates[str(d / n["test"])] = test_source(task, mod, ext, lang, Path(py).name)
    if MARK not in text or f"_ckls_kernel_{task.func_name}" not in text:
        ind = tgt.indent
        imp = (f"{ind}{MARK} {task.func_name} runs as {lang.upper()} ({mod}{ext}) when its inputs match; the "
               f"Python below is the reference and fallback\n"
               f"{ind}try:\n{ind}    from .{mod} import dispatch as _ckls_kernel_{task.func_name}\n"
               f"{ind}except ImportError:\n{ind}    from {mod} import dispatch as _ckls_kernel_{task.func_name}\n\n")
        deco = f"{ind}@_ckls_kernel_{task.func_name}\n"
        alias = f"{ind}{task.func_name}_reference = {task.func_name}.__wrapped__  # the original, for ckls verify\n"
        plan.edits[py] = [Insert(tgt.start_line, imp), Insert(tgt.def_line, deco), Insert(tgt.end_line + 1, alias)]
    return plan


# ---- generated files ---------------------------------------------------------------------------------------------
def cuda_host_shim(spec: KernelSpec) -> str:
    """C++ for `ckls_host_<name>`: the launcher's signature with host pointers plus the byte size of each array;
    it copies inputs to the device, launches, copies outputs back and frees (returns the cudaError_t)."""
    arrays = spec.arrays
    call, decl = [s.name for s in spec.sizes], []
    for a in spec.args:
        if a.kind == "scalar":
            call.append(a.name)
            continue
        call.append(f"d_{a.name}")
        decl.append(f"    {a.ctype} *d_{a.name} = NULL;")
        if a.views:
            call += [f"{a.name}_s{d}" for d in range(len(a.shape))]
    lines = ["#include <stdint.h>", "#include <cuda_runtime.h>", "",
             f'extern "C" {spec.c_prototype()};', "",
             f'extern "C" int ckls_host_{spec.name}({", ".join(spec.c_params() + ["const int64_t *nbytes"])}) {{',
             *decl, "    cudaError_t e = cudaSuccess;"]
    for i, a in enumerate(arrays):
        lines.append(f"    if (nbytes[{i}] > 0 && (e = cudaMalloc((void **)&d_{a.name}, nbytes[{i}])) != cudaSuccess) "
                     "goto done;")
        if a.role != "out":
            lines.append(f"    if (nbytes[{i}] > 0 && (e = cudaMemcpy(d_{a.name}, {a.name}, nbytes[{i}], "
                         "cudaMemcpyHostToDevice)) != cudaSuccess) goto done;")
    lines += [f"    {spec.name}({', '.join(call)});", "    if ((e = cudaGetLastError()) != cudaSuccess) goto done;"]
    for i, a in enumerate(arrays):
        if a.role != "in":  # a blocking copy on the legacy stream: waits for the launcher's work
            lines.append(f"    if (nbytes[{i}] > 0 && (e = cudaMemcpy({a.name}, d_{a.name}, nbytes[{i}], "
                         "cudaMemcpyDeviceToHost)) != cudaSuccess) goto done;")
    lines.append("done:")
    lines += [f"    cudaFree(d_{a.name});" for a in arrays]
    lines += ["    return (int)e;", "}", ""]
    return "\n".join(lines)


def wrapper_source(task: KernelTask, mod: str, ext: str, lang: str, verdict: str | None, forced: bool) -> str:
    spec = task.spec
    sizes = [s.name for s in spec.sizes]
    args = [(a.name, a.kind, a.dtype, list(a.shape), a.role, a.views) for a in spec.args]
    shapes = {a.name: f"lambda {', '.join(sizes)}: ({''.join(e + ', ' for e in a.shape)})" for a in spec.arrays}
    typical = {s.name: min(s.typical, s.max, 257) for s in spec.sizes}
    status = f"verified {verdict}" if verdict == "PASS" else f"APPLIED WITHOUT PASS (verdict {verdict}, forced)"
    return f'''"""The ckls kernel for {Path(task.py_path).name}::{task.func_name} ({lang.upper()}, {status}). Generated by
`ckls kernel`; regenerate rather than edit. The Python original stays the reference and the fallback.

dispatch() wraps the original: the kernel runs only when every argument matches the contract exactly (NumPy
arrays of the declared dtype and rank, consistent sizes; scalars as numbers); anything else runs the original,
as does CKLS_KERNELS=0 or a machine where the kernel cannot be built (the reason is in `build_error()`).
The shared object is built once per source and machine under $CKLS_KERNEL_CACHE (default ~/.cache/ckls).
"""
import functools
import hashlib
import os
import shutil
import subprocess
import threading

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "{mod}{ext}")
LANG = "{lang}"
PROTOTYPE = "{spec.c_prototype()};"
HOST_SHIM = {cuda_host_shim(spec) if lang == "cuda" else ""!r}  # CUDA: host copies around the device launcher
SIZES = {sizes!r}
ARGS = {args!r}  # name, kind, dtype, shape, role, views
SHAPES = {{{", ".join(f"{k!r}: {v}" for k, v in shapes.items())}}}
SIZE_FROM = {size_sources(spec)!r}
TOLERANCE = {{{", ".join(f"{a.name!r}: {a.tolerance()!r}" for a in spec.outputs)}}}
EXAMPLE_SIZES = {typical!r}
DTYPES = {{"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}}
CTYPES = {{"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t"}}
_lock = threading.Lock()
_state = {{"fn": None, "ffi": None, "error": None}}


def _build():
    import cffi

    with open(SOURCE, "rb") as f:
        src = f.read()
    if LANG == "cuda":
        if not shutil.which("nvidia-smi") or subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode:
            raise RuntimeError("no GPU")
        cmd = ["nvcc", "-O3", "-shared", "-Xcompiler", "-fPIC"]
    else:
        cmd = [os.environ.get("CC", "gcc"), "-std=gnu11", "-O3", "-march=native", "-fPIC", "-shared", "-fopenmp"]
    key = hashlib.sha256(src + HOST_SHIM.encode() + " ".join(cmd).encode() + os.uname().machine.encode()).hexdigest()[:16]
    cache = os.environ.get("CKLS_KERNEL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ckls")
    os.makedirs(cache, exist_ok=True)
    so = os.path.join(cache, "{mod}-" + key + ".so")
    if not os.path.exists(so):
        tmp = so + ".%d.tmp" % os.getpid()
        srcs = [SOURCE]
        if HOST_SHIM:
            srcs.append(so[:-3] + "_host.cu")
            with open(srcs[1], "w") as f:
                f.write(HOST_SHIM)
        p = subprocess.run(cmd + ["-o", tmp] + srcs + ["-lm"], capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError("build failed: " + p.stderr[-2000:])
        os.replace(tmp, so)
    ffi = cffi.FFI()
    name = PROTOTYPE.split("(")[0].split()[-1]
    if HOST_SHIM:
        ffi.cdef(PROTOTYPE.replace("void " + name + "(", "int ckls_host_" + name + "(")[:-2]
                 + ", const int64_t *nbytes);")
        return ffi, getattr(ffi.dlopen(so), "ckls_host_" + name)
    ffi.cdef(PROTOTYPE)
    return ffi, getattr(ffi.dlopen(so), name)


def _kernel():
    with _lock:
        if _state["fn"] is None and _state["error"] is None:
            try:
                _state["ffi"], _state["fn"] = _build()
            except Exception as e:  # no compiler, no GPU, no cffi: the original runs instead
                _state["error"] = f"{{type(e).__name__}}: {{e}}"
        return _state["ffi"], _state["fn"]


def build_error():
    _kernel()
    return _state["error"]


def call(*args):
    """The kernel's outputs for these arguments, or NotImplemented when they do not match the contract."""
    inputs = [a for a in ARGS if a[4] != "out"]
    if len(args) != len(inputs):
        return NotImplemented
    given = dict(zip([a[0] for a in inputs], args))
    sizes = {{}}
    for s, (name, dim) in SIZE_FROM.items():
        v = given[name]
        if not isinstance(v, np.ndarray) or v.ndim <= dim:
            return NotImplemented
        sizes[s] = int(v.shape[dim])
    for name, kind, dtype, shape, role, views in inputs:
        v = given[name]
        if kind == "scalar":
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                return NotImplemented
            if dtype[0] == "i" and not isinstance(v, (int, np.integer)):
                return NotImplemented  # a float where the kernel takes an integer: the original decides
        elif not (isinstance(v, np.ndarray) and v.dtype == DTYPES[dtype]
                  and v.shape == SHAPES[name](*[sizes[s] for s in SIZES])):
            return NotImplemented
    ffi, fn = _kernel()
    if fn is None:
        return NotImplemented
    c_args, keep, outs = [sizes[s] for s in SIZES], [], []
    for name, kind, dtype, shape, role, views in ARGS:
        if kind == "scalar":
            c_args.append(given[name])
            continue
        if role == "out":
            arr = np.empty(SHAPES[name](*[sizes[s] for s in SIZES]), DTYPES[dtype])
        else:
            arr = np.ascontiguousarray(given[name])
            if role == "inout":
                arr = arr.copy()
        keep.append(arr)
        if role != "in":
            outs.append(arr)
        c_args.append(ffi.cast(CTYPES[dtype] + " *", arr.ctypes.data))
        if views:
            c_args += [s // arr.itemsize for s in arr.strides]
    if HOST_SHIM:
        if fn(*c_args, ffi.new("int64_t[]", [arr.nbytes for arr in keep])) != 0:
            return NotImplemented  # a CUDA error (no device, out of memory): the original answers
    else:
        fn(*c_args)
    outs = [o[()] if o.ndim == 0 else o for o in outs]
    return outs[0] if len(outs) == 1 else tuple(outs)


def dispatch(original):
    """Decorator: the kernel when the arguments fit, else the original (kept as __wrapped__)."""
    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if not kwargs and os.environ.get("CKLS_KERNELS", "1") != "0":
            out = call(*args)
            if out is not NotImplemented:
                wrapper.kernel_calls += 1
                return out
        return original(*args, **kwargs)
    wrapper.kernel_calls = 0
    return wrapper


def example_args(rng, sizes=None):
    """Random arguments that fit the contract (for the generated test)."""
    sizes = dict(EXAMPLE_SIZES, **(sizes or {{}}))
    out = []
    for name, kind, dtype, shape, role, views in ARGS:
        if role == "out":
            continue
        if kind == "scalar":
            out.append(float(rng.uniform(-2, 2)) if dtype[0] == "f" else int(rng.integers(-100, 100)))
        elif dtype[0] == "f":
            out.append(rng.standard_normal(SHAPES[name](*[sizes[s] for s in SIZES])).astype(DTYPES[dtype]))
        else:
            out.append(rng.integers(-100, 100, SHAPES[name](*[sizes[s] for s in SIZES])).astype(DTYPES[dtype]))
    return out
'''


def test_source(task: KernelTask, mod: str, ext: str, lang: str, py_name: str) -> str:
    f = task.func_name
    py_mod = Path(py_name).stem
    ok = '("PASS",)' if lang == "c" else '("PASS", "UNVERIFIED")'
    return f'''"""Re-verifies the ckls kernel of {py_name}::{f} against the Python original, and checks that {f} calls it.
Generated by `ckls kernel --apply`; needs ckls (for the judge) and a C compiler."""
import os
import random
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def test_{f}_kernel_passes_ckls_verify():
    verify = pytest.importorskip("ckls.verify")
    spec = verify.KernelSpec.load(os.path.join(HERE, "{mod}.spec.json"))
    seed = random.SystemRandom().getrandbits(32)
    rep = verify.verify(os.path.join(HERE, "{py_name}") + "::{f}_reference", os.path.join(HERE, "{mod}{ext}"), spec,
                        budget="ci", seed=seed)
    assert rep.verdict in {ok}, rep.to_text()


def test_{f}_dispatches_to_the_kernel():
    import {mod} as k
    import {py_mod} as m

    if k.build_error():
        pytest.skip("kernel not built here: " + k.build_error())
    rng = np.random.default_rng(random.SystemRandom().getrandbits(32))
    args = k.example_args(rng)
    before = m.{f}.kernel_calls
    got = m.{f}(*args)
    assert m.{f}.kernel_calls == before + 1
    want = m.{f}_reference(*[a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                            for a in args])
    got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
    for (name, (rtol, atol)), g, w in zip(k.TOLERANCE.items(), got, want):
        w = np.asarray(w, np.float64)
        scale = float(np.max(np.abs(w))) if w.size else 0.0
        np.testing.assert_allclose(np.asarray(g, np.float64), w, rtol=rtol, atol=atol * scale, err_msg=name)
'''
