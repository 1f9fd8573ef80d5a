"""Finding the function at the cursor with tree-sitter and inferring its kernel contract: checked against the
hand-written specs of the verifier's corpus, annotations, docstrings, call sites and the questions asked."""
import json
import re
from pathlib import Path

import pytest

from ckls.kernels.infer import infer
from ckls.kernels.service import answer_all, draft_for
from ckls.kernels.target import TargetError, find_call_sites, find_target, parse_ref
from ckls.kernels.task import draft_task

CORPUS = Path(__file__).resolve().parent / "kernels_corpus"


def contract(spec) -> dict:
    """What must agree with a hand-written spec: names, kinds, roles, shapes (sizes renamed in order)."""
    rename = {}
    out = []
    for a in spec.args:
        shape = []
        for d in a.shape:
            rename.setdefault(d, f"s{len(rename)}")
            shape.append(rename[d])
        out.append((a.kind, a.role, tuple(shape)))
    return out


@pytest.mark.parametrize("name", ["axpy", "dot", "rowsum", "sigmoid", "relu"])
def test_inferred_contract_matches_the_corpus_spec(name):
    src = (CORPUS / name / "original.py").read_text()
    func = re.search(r"^def (\w+)", src, re.M).group(1)
    want = json.loads((CORPUS / name / "spec.json").read_text())
    draft = answer_all(draft_for(str(CORPUS / name / "original.py"), name=func),
                       lambda q: {"dtype": want["args"][0]["dtype"]}.get(q.key, q.default))
    spec = draft.task().spec
    from ckls.verify.spec import KernelSpec
    ref = KernelSpec.from_dict(want)
    assert contract(spec) == contract(ref)
    assert [a.dtype for a in spec.args] == [a.dtype for a in ref.args]


def test_cursor_selects_innermost_function_and_selection_spans():
    src = "def outer(x):\n    def inner(y):\n        return y * 2\n    return inner(x)\n\n\ndef other(z):\n    return z\n"
    assert find_target("m.py", src, line=2, col=8).name == "inner"
    assert find_target("m.py", src, line=0, col=0).name == "outer"
    assert find_target("m.py", src, line=3, col=4).name == "outer"
    assert find_target("m.py", src, line=1, end_line=3).name == "outer"   # the selection leaves inner
    assert find_target("m.py", src, line=7).name == "other"
    with pytest.raises(TargetError):
        find_target("m.py", src, line=5)
    with pytest.raises(TargetError):
        find_target("m.py", src, name="missing")


def test_signature_annotations_docstring_names():
    src = '''
import numpy as np
import numpy.typing as npt


@some.decorator
def scale(x: npt.NDArray[np.float64], alpha: float = 2.0) -> np.ndarray:
    """Scale a vector.

    Parameters
    ----------
    x : ndarray, shape (n,)
        the input
    alpha : float
        the factor
    """
    return alpha * np.asarray(x)
'''
    t = find_target("s.py", src, name="scale")
    assert t.source.startswith("@some.decorator") and t.start_line == 5 and t.def_line == 6
    assert [(p.name, p.annotation, p.default) for p in t.params] == [
        ("x", "npt.NDArray[np.float64]", ""), ("alpha", "float", "2.0")]
    assert t.returns == "np.ndarray" and t.docstring.startswith("Scale a vector.")
    assert "alpha" in t.names_used and "np" in t.names_used
    inf = infer(t)
    assert inf.questions == []
    assert inf.spec.c_prototype() == "void scale(int64_t n, const double *x, double alpha, double *out)"


def test_two_d_shapes_from_shape_unpacking_and_size_params():
    src = '''
import numpy as np

def matvec(a, v):
    rows, cols = a.shape
    out = np.zeros(rows, dtype=np.float32)
    for i in range(rows):
        for j in range(cols):
            out[i] += a[i, j] * v[j]
    return out
'''
    spec = infer(find_target("mv.py", src, name="matvec")).spec
    assert spec.c_prototype() == ("void matvec(int64_t rows, int64_t cols, const float *a, const float *v, "
                                  "float *out)")
    assert [a.shape for a in spec.args] == [["rows", "cols"], ["cols"], ["rows"]]


def test_unknowns_become_questions_with_choices_and_answers_settle_them():
    src = "def f(x, k):\n    return x * k\n"
    t = find_target("f.py", src, name="f")
    inf = infer(t)
    keys = {q.key: q for q in inf.questions}
    assert set(keys) == {"dtype", "kind:x", "kind:k"}
    assert keys["dtype"].choices == ["f32", "f64"] and keys["dtype"].default in keys["dtype"].choices
    inf2 = infer(t, {"dtype": "f64", "kind:x": "array", "kind:k": "scalar", "shape:x": "rows, cols"})
    assert [q.key for q in inf2.questions] == []
    assert inf2.spec.c_prototype() == "void f(int64_t rows, int64_t cols, const double *x, double k, double *out)"


def test_call_sites_in_tests_give_dtype_and_scalars(tmp_path):
    (tmp_path / "ops.py").write_text("def mix(w, x, y):\n    out = x.copy()\n    for i in range(len(x)):\n"
                                     "        out[i] = w * x[i] + (1 - w) * y[i]\n    return out\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_ops.py").write_text(
        "import numpy as np\nfrom ops import mix\n\ndef test_mix():\n    x = np.ones(5, dtype=np.float64)\n"
        "    assert mix(0.25, x, x)[0] == 1.0\n")
    t = find_target(tmp_path / "ops.py", name="mix")
    calls = find_call_sites(t, tmp_path)
    assert len(calls) == 1 and calls[0].in_test and calls[0].args == ["0.25", "x", "x"]
    d = draft_task(str(tmp_path / "ops.py"), name="mix", root=str(tmp_path))
    assert d.questions == []
    assert d.task().spec.c_prototype() == "void mix(int64_t n, double w, const double *x, const double *y, double *out)"
    assert "tests/test_ops.py:6" in d.task().call_sites[0]


def test_spec_file_beside_the_source_wins(tmp_path):
    (tmp_path / "ops.py").write_text((CORPUS / "axpy" / "original.py").read_text())
    spec = json.loads((CORPUS / "axpy" / "spec.json").read_text())
    (tmp_path / "ops.axpy.spec.json").write_text(json.dumps(spec))
    d = draft_task(str(tmp_path / "ops.py"), name="axpy")
    assert d.spec_source.endswith("ops.axpy.spec.json") and d.questions == []
    assert d.task().spec.numpy == str((tmp_path / "original.py").resolve()) + "::axpy_numpy"


def test_unsupported_functions_say_why():
    with pytest.raises(TargetError, match=r"\*args"):
        find_target("v.py", "def f(*xs):\n    return xs\n", name="f")
    with pytest.raises(TargetError, match="returns nothing"):
        infer(find_target("v.py", "def f(x):\n    x[0] = 1.0\n", name="f"), {"dtype": "f32"})
    with pytest.raises(TargetError):
        parse_ref("ops.py")
    assert parse_ref("a/b.py::f") == ("a/b.py", "f")
