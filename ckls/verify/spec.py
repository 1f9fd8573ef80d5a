"""The kernel contract: what a candidate C/CUDA function must look like and how it is called.

A spec names the C function, its size symbols and its arguments. The C calling convention it implies:

    void name(int64_t <size>..., <arg>...)

sizes first, in spec order, then each argument in spec order: an array is a pointer (``const`` for role
``in``) followed, when ``views`` is true, by one int64 stride per dimension, counted in elements; a scalar is
passed by value. The original Python function takes the ``in``/``inout`` arguments (arrays as float64 NumPy
arrays for float dtypes) in spec order and returns the ``out``/``inout`` values in spec order (a single value
is returned bare, several as a tuple).

CUDA (``"language": "cuda"``): the same prototype, defined ``extern "C"`` in the .cu file, is a host function
(the launcher) taking the sizes and scalars by value and DEVICE pointers for the arrays (memory from
cuMemAlloc, with the same offsets, strides and aliasing as in C). The judge allocates device memory, copies
the inputs (and poisoned outputs) in and the results out; the launcher only launches. It queues its work on
the legacy default stream (stream 0; it may also synchronise) and may return before the work ends: the judge
copies the results back synchronously on stream 0 right after the return, so work left running on another
stream shows as a late write or a wrong result. It must handle any size (0 included, grids computed from the
sizes), must not reset or change the device, and owns any scratch memory it allocates. It is built with
``nvcc -O3 -shared -Xcompiler -fPIC -lineinfo`` for the GPU present, and judged on the GPU, then under
compute-sanitizer's memcheck, racecheck, initcheck and synccheck; shared memory holds NaN before each call.
Without a GPU it is only compiled, and the verdict is UNVERIFIED.
"""
from __future__ import annotations

import ast
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# dtype name -> (C type, NumPy dtype, default (rtol, atol)); atol is relative to the output's largest |value|.
DTYPES = {
    "f32": ("float", np.float32, (1e-4, 1e-5)),
    "f64": ("double", np.float64, (1e-10, 1e-12)),
    "i32": ("int32_t", np.int32, (0.0, 0.0)),
    "i64": ("int64_t", np.int64, (0.0, 0.0)),
}
ROLES = ("in", "out", "inout")
KINDS = ("array", "scalar")
FAMILIES = ("normal", "huge", "tiny", "special", "denormal", "ints")


class SpecError(ValueError):
    pass


@dataclass
class Size:
    name: str
    min: int = 0
    max: int = 4096
    tile: int = 8          # the kernel's natural block; tile-1, tile, tile+1 are always tried
    typical: int = 1024    # used for benchmarks and the naive check
    large: int | None = None  # the "large" shape class; defaults to max


@dataclass
class Arg:
    name: str
    kind: str = "array"
    dtype: str = "f32"
    shape: list[str] = field(default_factory=list)
    role: str = "in"
    views: bool = False              # strided/offset/transposed views allowed; strides are passed
    may_alias: list[str] = field(default_factory=list)  # input arrays this output may share memory with
    range: list[float] | None = None  # scalars and integer arrays: [lo, hi]
    rtol: float | None = None
    atol: float | None = None

    @property
    def ctype(self) -> str:
        return DTYPES[self.dtype][0]

    @property
    def np_dtype(self):
        return DTYPES[self.dtype][1]

    @property
    def is_float(self) -> bool:
        return self.dtype in ("f32", "f64")

    def tolerance(self) -> tuple[float, float]:
        rtol, atol = DTYPES[self.dtype][2]
        return (rtol if self.rtol is None else self.rtol, atol if self.atol is None else self.atol)


@dataclass
class KernelSpec:
    name: str
    sizes: list[Size]
    args: list[Arg]
    language: str = "c"
    openmp: bool = False        # try several thread counts
    deterministic: bool = True  # same inputs and thread count -> bitwise same outputs
    families: list[str] = field(default_factory=lambda: ["normal", "huge", "tiny", "special", "denormal"])
    flops: str | None = None    # expression in the sizes, for the hardware-limit check
    bytes: str | None = None    # bytes moved; defaults to the sum of all array sizes
    numpy: str | None = None    # "path.py::func", a vectorised NumPy version for the benchmark

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict) -> "KernelSpec":
        try:
            sizes = [Size(**s) for s in d["sizes"]]
            args = [Arg(**a) for a in d["args"]]
            rest = {k: v for k, v in d.items() if k not in ("sizes", "args")}
            spec = cls(sizes=sizes, args=args, **rest)
        except (KeyError, TypeError) as e:
            raise SpecError(f"malformed spec: {e}") from e
        spec.validate()
        return spec

    @classmethod
    def load(cls, path: str | Path) -> "KernelSpec":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def validate(self) -> None:
        if not self.name.isidentifier():
            raise SpecError(f"function name {self.name!r} is not a C identifier")
        if self.language not in ("c", "cuda"):
            raise SpecError(f"language must be c or cuda, not {self.language!r}")
        names = [s.name for s in self.sizes] + [a.name for a in self.args]
        if len(set(names)) != len(names):
            raise SpecError("size and argument names must be unique")
        for n in names:
            if not n.isidentifier():
                raise SpecError(f"{n!r} is not an identifier")
        for s in self.sizes:
            if not (0 <= s.min <= s.max):
                raise SpecError(f"size {s.name}: need 0 <= min <= max")
        sym = {s.name for s in self.sizes}
        for a in self.args:
            if a.kind not in KINDS or a.role not in ROLES or a.dtype not in DTYPES:
                raise SpecError(f"argument {a.name}: bad kind/role/dtype")
            if a.kind == "scalar" and (a.role != "in" or a.shape):
                raise SpecError(f"scalar {a.name} must be role in with no shape")
            for e in a.shape:
                _check_expr(e, sym)
            for other in a.may_alias:
                o = self.arg(other)
                if a.role == "in" or o.role == "out" or o.kind != "array":
                    raise SpecError(f"{a.name} may_alias {other}: only an output may alias an input array")
                if o.dtype != a.dtype or o.shape != a.shape:
                    raise SpecError(f"{a.name} may_alias {other}: dtype and shape must match")
        if not any(a.role != "in" for a in self.args):
            raise SpecError("a kernel needs at least one out or inout argument")
        for f in self.families:
            if f not in FAMILIES:
                raise SpecError(f"unknown value family {f!r}")
        for e in (self.flops, self.bytes):
            if e:
                _check_expr(e, sym)

    # ---- queries ------------------------------------------------------------------------------------
    def arg(self, name: str) -> Arg:
        for a in self.args:
            if a.name == name:
                return a
        raise SpecError(f"no argument named {name!r}")

    @property
    def arrays(self) -> list[Arg]:
        return [a for a in self.args if a.kind == "array"]

    @property
    def inputs(self) -> list[Arg]:
        return [a for a in self.args if a.role in ("in", "inout")]

    @property
    def outputs(self) -> list[Arg]:
        return [a for a in self.args if a.role in ("out", "inout")]

    def overlap_pairs(self) -> dict[str, str]:
        """Pure inputs that may share memory with an earlier one (same dtype, shape and views): name -> earlier."""
        out, seen = {}, []
        for a in self.arrays:
            if a.role != "in":
                continue
            for b in seen:
                if b.dtype == a.dtype and b.shape == a.shape and b.views == a.views and b.name not in out:
                    out[a.name] = b.name
                    break
            else:
                seen.append(a)
        return out

    def shape_of(self, arg: Arg, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(int(eval_expr(e, sizes)) for e in arg.shape)

    def c_params(self) -> list[str]:
        out = [f"int64_t {s.name}" for s in self.sizes]
        for a in self.args:
            if a.kind == "scalar":
                out.append(f"{a.ctype} {a.name}")
                continue
            const = "const " if a.role == "in" else ""
            out.append(f"{const}{a.ctype} *{a.name}")
            if a.views:
                out += [f"int64_t {a.name}_s{d}" for d in range(len(a.shape))]
        return out

    def c_prototype(self) -> str:
        return f"void {self.name}({', '.join(self.c_params())})"

    def describe(self) -> str:
        """The contract in words, for the human or model writing the kernel."""
        proto = ('extern "C" ' if self.language == "cuda" else "") + self.c_prototype() + ";"
        lines = [proto, ""]
        if self.language == "cuda":
            lines += ["  host launcher; arrays are device pointers; queue work on stream 0", ""]
        for a in self.args:
            if a.kind == "scalar":
                lines.append(f"  {a.name}: scalar {a.dtype}, role in")
                continue
            bits = [f"{a.dtype}[{', '.join(a.shape)}]", f"role {a.role}"]
            bits.append("any strides/offset (strides in elements)" if a.views else "contiguous, any alignment")
            if a.may_alias:
                bits.append(f"may be the same memory as {', '.join(a.may_alias)}")
            lines.append(f"  {a.name}: " + "; ".join(bits))
        for s in self.sizes:
            lines.append(f"  {s.name}: {s.min}..{s.max}")
        return "\n".join(lines)


# ---- a tiny safe evaluator for shape expressions ("n", "m*k", "(n+1)//2") -----------------------------
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant, ast.Load, ast.Add, ast.Sub,
            ast.Mult, ast.FloorDiv, ast.Mod, ast.USub, ast.Pow)


def _check_expr(expr: str, symbols: set[str]) -> None:
    try:
        tree = ast.parse(str(expr), mode="eval")
    except SyntaxError as e:
        raise SpecError(f"bad expression {expr!r}") from e
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise SpecError(f"expression {expr!r}: {type(node).__name__} not allowed")
        if isinstance(node, ast.Name) and node.id not in symbols:
            raise SpecError(f"expression {expr!r}: unknown size {node.id!r}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int):
            raise SpecError(f"expression {expr!r}: only integer constants")


def eval_expr(expr: str | int, sizes: dict[str, int]) -> int:
    if isinstance(expr, int):
        return expr
    return _eval(ast.parse(str(expr), mode="eval").body, sizes)


def _eval(node, env):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp):
        return -_eval(node.operand, env)
    a, b = _eval(node.left, env), _eval(node.right, env)
    op = type(node.op)
    if op is ast.Add:
        return a + b
    if op is ast.Sub:
        return a - b
    if op is ast.Mult:
        return a * b
    if op is ast.FloorDiv:
        return a // b if b else 0
    if op is ast.Mod:
        return a % b if b else 0
    return a ** b
