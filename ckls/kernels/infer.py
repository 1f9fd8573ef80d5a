"""From a Target to a kernel contract (ckls.verify.KernelSpec): which parameters are arrays, scalars or sizes,
their dtypes and shapes, and what the function returns. What the source does not settle becomes a Question
with choices; the caller asks the user (CLI prompt, LSP showMessageRequest) and calls infer() again with the
answers. Evidence, strongest first: an explicit answer, annotations, the docstring, call sites, the body.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ckls.verify.spec import KernelSpec, SpecError

from .target import Target, TargetError, _text, assignments_in

DTYPE_WORDS = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64", "double": "f64",
               "single": "f32", "f32": "f32", "f64": "f64", "float16": None, "bfloat16": None}
ARRAY_WORDS = ("ndarray", "NDArray", "ArrayLike", "Array", "list", "List", "Sequence", "Tensor", "array")
METHODS = ("max", "min", "sum", "mean", "reshape", "astype", "copy", "dot", "std", "var", "argmax", "argmin",
           "ravel", "flatten", "cumsum", "prod", "clip", "tolist")
ALLOC = ("empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like", "full_like", "array",
         "copy", "asarray")
DEFAULT_DIMS = {1: ["n"], 2: ["rows", "cols"], 3: ["b", "rows", "cols"]}


@dataclass
class Question:
    key: str                 # "dtype", "kind:<param>", "shape:<param>"
    prompt: str
    choices: list[str]
    default: str

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Inference:
    spec: KernelSpec | None
    questions: list[Question] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # assumptions made, shown to the user and the model


@dataclass
class _P:
    name: str
    kind: str | None = None        # array | scalar | size
    ndim: int = 0
    dims: dict = field(default_factory=dict)  # dim index -> symbol
    dtype: str | None = None
    why: list[str] = field(default_factory=list)


def _dtype_in(text: str) -> str | None:
    for w, d in DTYPE_WORDS.items():
        if re.search(r"\b" + w + r"\b", text):
            return d
    return None


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _sub_depth(node) -> tuple[str | None, int]:
    """x[i][j] -> ("x", 2); x[i, j] -> ("x", 2); x[1:] -> ("x", 1)."""
    depth = 0
    while node.type == "subscript":
        depth += sum(1 for i in range(node.child_count) if node.field_name_for_child(i) == "subscript")
        node = node.child_by_field_name("value")
    return (_text(node) if node.type == "identifier" else None), depth


def _doc_params(doc: str) -> dict[str, str]:
    """name -> description, from numpy style (`x : ndarray, shape (n,)`) or Google style (`x: ...`) lines."""
    out, cur = {}, None
    for line in doc.splitlines():
        m = re.match(r"^\s*\**([A-Za-z_]\w*)\s*(\([^)]*\))?\s*:\s*(.*)$", line)
        if m:
            cur = m.group(1)
            out[cur] = (m.group(2) or "") + " " + m.group(3)
        elif cur and line.strip():
            out[cur] += " " + line.strip()
        else:
            cur = None
    return out


def _doc_shape(desc: str) -> list[str] | None:
    m = re.search(r"shape\s*[=:]?\s*\(([^)]*)\)", desc) or re.search(r"\[([\w\s,*+]+)\]", desc) or \
        re.search(r"^\s*\(([\w\s,*+]*)\)", desc)
    if not m:
        return None
    dims = [d.strip() for d in m.group(1).split(",") if d.strip()]
    return dims if all(re.fullmatch(r"[A-Za-z_]\w*|\d+", d) or re.fullmatch(r"[\w\s*+]+", d) for d in dims) else None


def infer(target: Target, answers: dict[str, str] | None = None) -> Inference:
    answers = dict(answers or {})
    notes: list[str] = []
    ps = {p.name: _P(p.name) for p in target.params}
    if not ps:
        raise TargetError(f"{target.name} takes no arguments: there is nothing for a kernel to compute on")
    body = target.body_node
    doc = _doc_params(target.docstring)
    local = {}       # local name -> right-hand side node
    dtypes_seen = set()

    # --- annotations and docstring ------------------------------------------------------------------------
    for prm in target.params:
        p = ps[prm.name]
        ann = prm.annotation
        if ann:
            d = _dtype_in(ann)
            if any(w in ann for w in ARRAY_WORDS):
                p.kind, p.dtype = "array", d
                p.why.append(f"annotated {ann}")
            elif ann in ("float", "np.float32", "np.float64"):
                p.kind, p.dtype = "scalar", d
            elif ann == "int":
                p.kind = "int"  # a size or an integer scalar; the body decides
            if d:
                dtypes_seen.add(d)
        desc = doc.get(prm.name)
        if desc:
            d = _dtype_in(desc)
            shape = _doc_shape(desc)
            if shape is not None:
                p.kind, p.ndim = "array", len(shape)
                p.dims = {i: s for i, s in enumerate(shape)}
                p.why.append(f"docstring shape ({', '.join(shape)})")
            elif re.search(r"\b(scalar|float|number)\b", desc) and not re.search(r"array|vector|matrix", desc):
                p.kind = p.kind or "scalar"
            elif re.search(r"\b(array|vector|matrix)\b", desc):
                p.kind = "array"
            if d:
                p.dtype = p.dtype or d
                dtypes_seen.add(d)

    # a docstring that names one float type for the whole function ("... in float64") settles it, unless the
    # annotations or parameter lines say otherwise (then both are seen and the question is asked)
    if not any(d in ("f32", "f64") for d in dtypes_seen):
        words = {DTYPE_WORDS[w] for w in DTYPE_WORDS if re.search(r"\b" + w + r"\b", target.docstring or "")}
        floats_in_doc = words & {"f32", "f64"}
        if len(floats_in_doc) == 1:
            dtypes_seen |= floats_in_doc
            notes.append(f"float type {next(iter(floats_in_doc))}: the docstring says so")

    # --- the body: indexing, len(), .shape, loops, allocations ---------------------------------------------
    ranged, weak = set(), set()
    for n in _walk(body):
        t = n.type
        if t == "subscript":
            name, depth = _sub_depth(n)
            if name in ps and (n.parent is None or n.parent.type != "subscript"):
                p = ps[name]
                if p.kind in (None, "array"):
                    p.kind = "array"
                    p.ndim = max(p.ndim, depth)
        elif t == "call":
            f = _text(n.child_by_field_name("function"))
            args = n.child_by_field_name("arguments").named_children
            first = _text(args[0]) if args else ""
            if f in ("len", "enumerate", "zip", "iter", "reversed", "sum", "max", "min") or f.endswith(".sum"):
                for a in args:
                    if _text(a) in ps and ps[_text(a)].kind in (None, "array"):
                        ps[_text(a)].kind = "array"
                        ps[_text(a)].ndim = max(ps[_text(a)].ndim, 1)
            if re.match(r"(np|numpy)\.", f):  # handed to NumPy: an array unless something says otherwise
                for a in args:
                    if _text(a) in ps and ps[_text(a)].kind is None:
                        weak.add(_text(a))
            if f == "range":
                for a in args:
                    if _text(a) in ps:
                        ranged.add(_text(a))
            if "dtype" in _text(n) or f.endswith("astype"):
                d = _dtype_in(_text(n))
                if d:
                    dtypes_seen.add(d)
            if f in ("len",) and first in ps:
                par = n.parent
                if par is not None and par.type == "assignment" and par.child_by_field_name("left").type == "identifier":
                    ps[first].dims.setdefault(0, _text(par.child_by_field_name("left")))
        elif t == "attribute" and _text(n.child_by_field_name("object")) in ps and \
                _text(n.child_by_field_name("attribute")) in METHODS:
            p = ps[_text(n.child_by_field_name("object"))]
            if p.kind in (None, "array"):
                p.kind, p.ndim = "array", max(p.ndim, 1)
                m = re.search(r"axis\s*=\s*(-?\d+)", _text(n.parent)) if n.parent is not None else None
                if m and int(m.group(1)) >= 0:
                    p.ndim = max(p.ndim, int(m.group(1)) + 1)
        elif t == "attribute" and _text(n.child_by_field_name("attribute")) in ("shape", "ndim", "T", "size"):
            obj = _text(n.child_by_field_name("object"))
            if obj in ps:
                p = ps[obj]
                p.kind = "array"
                p.ndim = max(p.ndim, 1)
                par = n.parent
                if par is not None and par.type == "subscript":
                    try:
                        k = int(_text(par.child_by_field_name("subscript")))
                        p.ndim = max(p.ndim, k + 1)
                        gp = par.parent
                        if gp is not None and gp.type == "assignment" and \
                                gp.child_by_field_name("left").type == "identifier":
                            p.dims.setdefault(k, _text(gp.child_by_field_name("left")))
                    except ValueError:
                        pass
                elif par is not None and par.type == "assignment" and par.child_by_field_name("right") == n:
                    left = par.child_by_field_name("left")
                    if left.type in ("pattern_list", "tuple_pattern"):
                        names = [_text(c) for c in left.named_children]
                        p.ndim = max(p.ndim, len(names))
                        for i, s in enumerate(names):
                            p.dims.setdefault(i, s)
        elif t == "for_statement":
            right = n.child_by_field_name("right")
            left = n.child_by_field_name("left")
            it = _text(right)
            if it in ps and ps[it].kind in (None, "array"):
                ps[it].kind = "array"
                row = _text(left)
                ps[it].ndim = max(ps[it].ndim, 1 + _row_depth(n.child_by_field_name("body"), row))
            if right.type == "call" and _text(right.child_by_field_name("function")) == "enumerate":
                a = right.child_by_field_name("arguments").named_children
                if a and _text(a[0]) in ps and left.type in ("pattern_list", "tuple_pattern") and \
                        len(left.named_children) == 2:
                    row = _text(left.named_children[1])
                    p = ps[_text(a[0])]
                    p.kind = "array"
                    p.ndim = max(p.ndim, 1 + _row_depth(n.child_by_field_name("body"), row))
        elif t == "assignment":
            left = n.child_by_field_name("left")
            if left.type == "identifier":
                local[_text(left)] = n.child_by_field_name("right")
        elif t == "augmented_assignment" or (t == "assignment" and False):
            pass

    # --- call sites: literals are scalars; dtype words in the arguments or the variables they name -------------
    for cs in target.call_sites:
        try:
            src = open(cs.path).read()
        except OSError:
            src = ""
        assigns = assignments_in(src)
        for prm, a in zip(target.params, cs.args):
            p = ps[prm.name]
            if re.fullmatch(r"-?\d+\.\d*(e-?\d+)?|-?\d*\.\d+(e-?\d+)?", a) and p.kind in (None, "scalar"):
                p.kind = "scalar"
                p.why.append(f"called with {a} at {cs.path}:{cs.line + 1}")
            text = a + " " + assigns.get(a, "")
            d = _dtype_in(text)
            if d:
                dtypes_seen.add(d)
                if p.kind in (None, "array") and not re.fullmatch(r"-?[\d.e]+", a):
                    p.dtype = p.dtype or d

    _dims_from_loop_indices(body, ps)
    for name in weak:
        if ps[name].kind is None:
            ps[name].kind = "array"
            notes.append(f"{name} is handed to NumPy: taken as an array")

    # --- sizes: int parameters used in range() or shape expressions -------------------------------------------
    for name in ranged:
        if ps[name].kind in (None, "int"):
            ps[name].kind = "size"
    for p in ps.values():
        if p.kind == "int":
            p.kind = "size" if any(name == p.name for name in ranged) else "scalar"
            if p.kind == "scalar":
                p.dtype = "i64"

    # --- the float dtype -------------------------------------------------------------------------------------
    floats = sorted(d for d in dtypes_seen if d in ("f32", "f64"))
    if "dtype" in answers:
        fdt = answers["dtype"]
    elif len(floats) == 1:
        fdt = floats[0]
    else:
        fdt = None
    questions: list[Question] = []
    if fdt is None:
        why = "both float32 and float64 appear" if floats else "no dtype is written in the source"
        questions.append(Question("dtype", f"Element type of the kernel's float data for {target.name} ({why})?",
                                  ["f32", "f64"], "f32"))
        fdt = "f32"

    # --- each parameter: kind and shape (ask when unknown) ----------------------------------------------------
    for p in ps.values():
        key = f"kind:{p.name}"
        if key in answers:
            p.kind = answers[key]
        if p.kind is None:
            # never indexed, measured or iterated: most likely a scalar coefficient
            questions.append(Question(key, f"Is `{p.name}` of {target.name} an array, a scalar, or a size?",
                                      ["scalar", "array", "size"], "scalar"))
            p.kind = "scalar"
    arrays = [p for p in ps.values() if p.kind == "array"]
    sizes: list[str] = [p.name for p in ps.values() if p.kind == "size"]
    for p in arrays:
        key = f"shape:{p.name}"
        if key in answers:
            dims = [d.strip() for d in answers[key].strip("()[] ").split(",") if d.strip()]
            p.ndim, p.dims = len(dims), dict(enumerate(dims))
        elif p.ndim == 0:
            p.ndim = 1
            questions.append(Question(key, f"Shape of `{p.name}` (a 1-D array is assumed)?",
                                      ["n", "rows, cols", "n, k"], "n"))
        for i in range(p.ndim):
            p.dims.setdefault(i, None)
    # 1-D arrays without a named length share one symbol: element-wise code indexes them with one loop index.
    _name_free_dims(arrays, sizes, notes)
    for p in arrays:
        for s in p.dims.values():
            for tok in re.findall(r"[A-Za-z_]\w*", s):
                if tok not in sizes:
                    sizes.append(tok)

    # --- outputs: what the function returns ---------------------------------------------------------------------
    outs = _outputs(target, body, ps, local, fdt, notes)
    for o in outs:
        for s in o["shape"]:
            for tok in re.findall(r"[A-Za-z_]\w*", s):
                if tok not in sizes:
                    sizes.append(tok)

    args = []
    for p in ps.values():
        if p.kind == "size":
            continue
        if p.kind == "scalar":
            args.append({"name": p.name, "kind": "scalar", "dtype": p.dtype or fdt})
        else:
            dt = p.dtype if p.dtype in ("i32", "i64") else fdt
            args.append({"name": p.name, "dtype": dt, "shape": [p.dims[i] for i in range(p.ndim)]})
    args += outs
    size_specs = []
    for s in sizes:
        two_d = any(len(a.get("shape", [])) >= 2 and s in a.get("shape", []) for a in args)
        size_specs.append({"name": s, "min": 0, "max": 1024 if two_d else 100000, "tile": 8,
                           "typical": 512 if two_d else 100000, "large": 256 if two_d else 20000})
    d = {"name": target.name, "sizes": size_specs, "args": args}
    try:
        spec = KernelSpec.from_dict(d)
    except SpecError as e:
        raise TargetError(f"cannot build a kernel contract for {target.name}: {e}") from e
    if len(ps) - len(sizes) != sum(1 for a in args if a.get("role", "in") == "in") and \
            any(p.kind == "size" for p in ps.values()):
        notes.append("size parameters become the kernel's int64 size arguments; the Python original must "
                     "still take them (the judge passes inputs only): prefer a spec file for such functions")
    return Inference(spec, questions, notes)


def _dims_from_loop_indices(body, ps) -> None:
    """`for j in range(cols): ... v[j]` makes v's dimension `cols` when `cols` names a known dimension."""
    known = {s for p in ps.values() for s in p.dims.values() if s} | {p.name for p in ps.values() if p.kind == "size"}
    loop = {}
    for n in _walk(body):
        if n.type == "for_statement" and n.child_by_field_name("left").type == "identifier":
            right = n.child_by_field_name("right")
            if right.type == "call" and _text(right.child_by_field_name("function")) == "range":
                a = right.child_by_field_name("arguments").named_children
                if len(a) == 1 and _text(a[0]) in known:
                    loop[_text(n.child_by_field_name("left"))] = _text(a[0])
    if not loop:
        return
    for n in _walk(body):
        if n.type != "subscript" or (n.parent is not None and n.parent.type == "subscript"):
            continue
        idx, node = [], n
        while node.type == "subscript":
            idx = [node.children[i] for i in range(node.child_count)
                   if node.field_name_for_child(i) == "subscript"] + idx
            node = node.child_by_field_name("value")
        name = _text(node)
        if name in ps and ps[name].kind == "array":
            for d, ix in enumerate(idx):
                if _text(ix) in loop:
                    ps[name].dims.setdefault(d, loop[_text(ix)])


def _row_depth(block, row: str) -> int:
    """1 when the loop variable `row` is itself indexed or iterated (x is 2-D), else 0."""
    if block is None:
        return 0
    for n in _walk(block):
        if n.type == "subscript" and _sub_depth(n)[0] == row:
            return 1
        if n.type == "for_statement" and row in _text(n.child_by_field_name("right")):
            return 1
        if n.type == "call" and _text(n.child_by_field_name("function")) in ("sum", "len", "max", "min") and \
                row in _text(n.child_by_field_name("arguments")):
            return 1
        if n.type == "attribute" and _text(n.child_by_field_name("object")) == row:
            return 1
    return 0


def _name_free_dims(arrays, sizes, notes) -> None:
    shared = None
    for p in arrays:
        for i in range(p.ndim):
            if p.dims.get(i) is None:
                if p.ndim == 1:
                    if shared is None:
                        shared = "n" if "n" not in sizes else "n0"
                    p.dims[i] = shared
                else:
                    cand = DEFAULT_DIMS.get(p.ndim, [f"d{j}" for j in range(p.ndim)])[i]
                    p.dims[i] = cand
    one_d = [p.name for p in arrays if p.ndim == 1 and p.dims.get(0) == shared]
    if shared and len(one_d) > 1:
        notes.append(f"assumed {', '.join(one_d)} have the same length {shared}")


def _shape_of_expr(node, ps, local, depth=0) -> list[str] | None:
    """The shape an expression evaluates to, when the source says so."""
    if node is None or depth > 4:
        return None
    t = node.type
    txt = _text(node)
    if t in ("float", "integer"):
        return []
    if t == "identifier":
        if txt in ps:
            p = ps[txt]
            return [p.dims[i] for i in range(p.ndim)] if p.kind == "array" else ([] if p.kind == "scalar" else None)
        if txt in local:
            return _shape_of_expr(local[txt], ps, local, depth + 1)
        return None
    if t == "call":
        f = _text(node.child_by_field_name("function")).rsplit(".", 1)[-1]
        args = node.child_by_field_name("arguments").named_children
        if f in ("float", "int", "sqrt", "exp", "abs", "fsum") or f.endswith("dot") and len(args) == 2 and all(
                _shape_of_expr(a, ps, local, depth + 1) and len(_shape_of_expr(a, ps, local, depth + 1)) == 1 for a in args):
            return []
        if f in ("empty_like", "zeros_like", "ones_like", "full_like", "copy", "array", "asarray") and args:
            return _shape_of_expr(args[0], ps, local, depth + 1)
        if f in ("empty", "zeros", "ones", "full") and args:
            return _dims_of(args[0], ps, local)
        if f in ("sum",) and len(args) == 1:
            return []
        for a in args:  # element-wise NumPy functions (np.exp(x), np.maximum(x, 0)) keep the shape
            s = _shape_of_expr(a, ps, local, depth + 1)
            if s:
                return s
        return None
    if t == "binary_operator":
        ls = _shape_of_expr(node.child_by_field_name("left"), ps, local, depth + 1)
        rs = _shape_of_expr(node.child_by_field_name("right"), ps, local, depth + 1)
        if ls is None or rs is None:
            return ls or rs
        return ls if len(ls) >= len(rs) else rs
    if t == "parenthesized_expression" and node.named_children:
        return _shape_of_expr(node.named_children[0], ps, local, depth + 1)
    if t == "unary_operator":
        return _shape_of_expr(node.named_children[-1], ps, local, depth + 1)
    return None


def _dims_of(node, ps, local) -> list[str] | None:
    """Dims of an allocation's shape argument: n, len(x), x.shape[0], x.shape, (n, m)."""
    t = node.type
    if t in ("tuple", "list"):
        out = []
        for c in node.named_children:
            d = _dims_of(c, ps, local)
            if d is None:
                return None
            out += d
        return out
    txt = _text(node)
    if t == "identifier" and txt in ps and ps[txt].kind == "size":
        return [txt]
    if t == "identifier" and txt in local:
        return _dims_of(local[txt], ps, local)
    m = re.fullmatch(r"len\((\w+)\)", txt)
    if m and m.group(1) in ps:
        return [ps[m.group(1)].dims[0]]
    m = re.fullmatch(r"(\w+)\.shape\[(\d+)\]", txt)
    if m and m.group(1) in ps and int(m.group(2)) < ps[m.group(1)].ndim:
        return [ps[m.group(1)].dims[int(m.group(2))]]
    m = re.fullmatch(r"(\w+)\.shape", txt)
    if m and m.group(1) in ps:
        p = ps[m.group(1)]
        return [p.dims[i] for i in range(p.ndim)]
    if t == "integer":
        return [txt]
    for p in ps.values():  # a local size variable bound to a dim (n = len(x))
        if p.kind == "array" and txt in p.dims.values():
            return [txt]
    return None


def _outputs(target, body, ps, local, fdt, notes) -> list[dict]:
    rets = [n for n in _walk(body) if n.type == "return_statement" and n.named_children]
    if not rets:
        raise TargetError(f"{target.name} returns nothing: a kernel's outputs are what the original returns "
                          "(functions that only modify their arguments are not supported yet)")
    expr = rets[-1].named_children[0]
    items = expr.named_children if expr.type in ("expression_list", "tuple") else [expr]
    outs, used = [], set(ps)
    for i, it in enumerate(items):
        name = _text(it) if it.type == "identifier" and _text(it) not in ps else ("out" if len(items) == 1 else f"out{i}")
        while name in used:
            name += "_"
        used.add(name)
        shape = _shape_of_expr(it, ps, local)
        if shape is None:
            arrays = [p for p in ps.values() if p.kind == "array"]
            shape = [arrays[0].dims[j] for j in range(arrays[0].ndim)] if arrays else []
            notes.append(f"output {name}: shape not evident from `{_text(it)[:60]}`, assumed {tuple(shape)}; "
                         "check it")
        outs.append({"name": name, "dtype": fdt, "shape": shape, "role": "out"})
    return outs
