"""Block formats through the public C API (ckls.native) against numpy and the `gguf` package:
dequantize bit-for-bit, Q8_0/Q4_0 quantizers byte-for-byte, Q8_K activations exactly as ggml's reference,
our K-quant quantizers' accuracy, dots of every ISA, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as GT
from gguf import quants
from hypothesis import given, settings
from hypothesis import strategies as st

from ckls.native import ffi, last_error, lib

F32, F16, BF16, Q4_0, Q8_0, Q4_K, Q6_K, Q8_K = (lib.CKLS_TYPE_F32, lib.CKLS_TYPE_F16, lib.CKLS_TYPE_BF16,
                                               lib.CKLS_TYPE_Q4_0, lib.CKLS_TYPE_Q8_0, lib.CKLS_TYPE_Q4_K,
                                               lib.CKLS_TYPE_Q6_K, lib.CKLS_TYPE_Q8_K)
GGUF_TYPE = {Q4_0: GT.Q4_0, Q8_0: GT.Q8_0, Q4_K: GT.Q4_K, Q6_K: GT.Q6_K, BF16: GT.BF16}
WEIGHT_TYPES = [F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K]
ISAS = [isa for isa in range(lib.CKLS_ISA_COUNT) if lib.ckls_isa_available(isa)]


def _f32p(a: np.ndarray):
    assert a.dtype == np.float32 and a.flags.c_contiguous
    return ffi.cast("float *", ffi.from_buffer(a))


def quantize(t: int, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros(lib.ckls_row_bytes(t, x.size), np.uint8)
    assert lib.ckls_quantize_row(t, _f32p(x), ffi.from_buffer(out), x.size) == 0, last_error()
    return out


def dequantize(t: int, raw: np.ndarray, n: int) -> np.ndarray:
    y = np.empty(n, np.float32)
    assert lib.ckls_dequantize_row(t, ffi.from_buffer(raw), _f32p(y), n) == 0, last_error()
    return y


def quantize_act(isa: int, t: int, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros(lib.ckls_row_bytes(t, x.size), np.uint8)
    assert lib.ckls_kernel_quantize_act(isa, t, _f32p(x), ffi.from_buffer(out), x.size) == 0, last_error()
    return out


def vec_dot(isa: int, t: int, n: int, w: np.ndarray, xq: np.ndarray) -> float:
    out = ffi.new("float *")
    assert lib.ckls_kernel_vec_dot(isa, t, n, ffi.from_buffer(w), ffi.from_buffer(xq), out) == 0, last_error()
    return out[0]


def gguf_quantize(x: np.ndarray, gt) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # f16 scale overflow is part of the test
        return quants.quantize(x.reshape(1, -1), gt).reshape(-1)


def block(t: int) -> tuple[int, int]:
    return lib.ckls_type_block_size(t), lib.ckls_type_block_bytes(t)


# ---- numpy models of the formats gguf does not cover ------------------------------------------------------
Q8K_DTYPE = np.dtype([("d", "<f4"), ("qs", "i1", 256), ("bsums", "<i2", 16)])


def q8k_reference(x: np.ndarray) -> np.ndarray:
    """ggml's quantize_row_q8_K_ref in numpy: scale -127/max (max = first value of largest magnitude), round half
    to even, bsums of 16."""
    xb = x.astype(np.float32).reshape(-1, 256)
    out = np.zeros(len(xb), Q8K_DTYPE)
    for i, row in enumerate(xb):
        a = np.abs(row)
        amax = np.nanmax(a) if np.any(~np.isnan(a)) else 0.0
        if not amax > 0:
            continue
        mx = row[np.flatnonzero(a == amax)[0]]
        iscale = np.float32(-127.0) / mx
        v = np.rint(iscale * row)  # f32 product, ties to even like the 1.5*2^23 trick
        v = np.where(np.isnan(v), 0, v)
        q = np.minimum(127, v).astype(np.int8)
        out[i]["qs"] = q
        out[i]["bsums"] = q.reshape(16, 16).astype(np.int32).sum(axis=1).astype(np.int16)
        out[i]["d"] = np.float32(1.0) / iscale
    return out.view(np.uint8).reshape(-1)


def deq_q8k(raw: np.ndarray) -> np.ndarray:
    b = raw.view(Q8K_DTYPE)
    return (b["d"][:, None] * b["qs"].astype(np.float32)).reshape(-1)


def naive_q4k(x: np.ndarray) -> np.ndarray:
    """Plain min/max Q4_K (no search) in the format's own precision: the bar our quantizer must clear."""
    xb = x.reshape(-1, 8, 32).astype(np.float32)
    mn = np.minimum(xb.min(axis=2), 0)
    sc = (xb.max(axis=2) - mn) / 15
    d = (sc.max(axis=1) / 63).astype(np.float16).astype(np.float32)
    dm = ((-mn).max(axis=1) / 63).astype(np.float16).astype(np.float32)
    ls = np.clip(np.round(sc / np.where(d > 0, d, 1)[:, None]), 0, 63)
    lm = np.clip(np.round(-mn / np.where(dm > 0, dm, 1)[:, None]), 0, 63)
    step = (d[:, None] * ls)[..., None]
    off = (dm[:, None] * lm)[..., None]
    q = np.clip(np.round((xb + off) / np.where(step > 0, step, 1)), 0, 15)
    return (step * q - off).reshape(-1)


def naive_q6k(x: np.ndarray) -> np.ndarray:
    xb = x.reshape(-1, 16, 16).astype(np.float32)
    sc = np.abs(xb).max(axis=2) / 31
    d = (sc.max(axis=1) / 127).astype(np.float16).astype(np.float32)
    ls = np.clip(np.round(sc / np.where(d > 0, d, 1)[:, None]), 0, 127)
    step = (d[:, None] * ls)[..., None]
    q = np.clip(np.round(xb / np.where(step > 0, step, 1)), -32, 31)
    return (step * q).reshape(-1)


def rel_rmse(x, y) -> float:
    return float(np.sqrt(np.mean((x.astype(np.float64) - y) ** 2) / np.mean(x.astype(np.float64) ** 2)))


# ---- dequantize: bit-for-bit with gguf on arbitrary bytes -------------------------------------------------
@pytest.mark.parametrize("t", [Q4_0, Q8_0, Q4_K, Q6_K])
def test_dequantize_matches_gguf_on_random_bytes(t, rng):
    blck, size = block(t)
    nb = 97
    raw = rng.integers(0, 256, nb * size, dtype=np.uint8)
    with np.errstate(invalid="ignore", over="ignore"):
        ref = quants.dequantize(raw.reshape(nb, size), GGUF_TYPE[t]).reshape(-1).astype(np.float32)
    ours = dequantize(t, raw, nb * blck)
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(ours), nan)
    assert np.array_equal(ours[~nan].view(np.uint32), ref[~nan].view(np.uint32))


def test_dequantize_q8k(rng):
    raw = np.zeros(13, Q8K_DTYPE)
    raw["d"] = rng.standard_normal(13).astype(np.float32)
    raw["qs"] = rng.integers(-128, 128, (13, 256))
    raw = raw.view(np.uint8).reshape(-1)
    assert np.array_equal(dequantize(Q8_K, raw, 13 * 256), deq_q8k(raw))


# ---- Q8_0 / Q4_0 quantizers: byte-for-byte with gguf ------------------------------------------------------
def _families(rng, n):
    """Gaussian; gaussian at scales 1e-20..1e20 per block (f16 scales under- and overflow); exact halves (rounding
    ties); a zero block."""
    yield rng.standard_normal(n).astype(np.float32)
    yield (rng.standard_normal(n) * 10.0 ** rng.integers(-20, 20, n // 32).repeat(32)).astype(np.float32)
    ties = rng.integers(-16, 16, n).astype(np.float32) / 2  # ties at many scales
    yield ties
    z = rng.standard_normal(n).astype(np.float32)
    z[:64] = 0
    yield z


def _zero_sign_free(t: int, raw: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Two kinds of block decode to zeros whatever they hold, and the references disagree on them:
    - Q4_0 of an all-zero block: ggml's C reference stores d = -0.0 (0/-8), gguf-py +0.0. We follow ggml's C (see
      test_quantizers_match_ggml).
    - A block whose largest |x| is below ~3.7e-37, so that 1/d (d = amax/127 or -amax/8) overflows to inf: ggml
      and gguf-py leave the quants to a float->int cast of +-inf or NaN (0 on x86), ckls clamps them (+-127).
    Compare with gguf modulo both: the sign of a zero d, and the quants of the blocks of the second kind."""
    size = {Q4_0: 18, Q8_0: 34}[t]
    b = raw.copy().reshape(-1, size)
    d = b[:, :2].copy().view(np.uint16).reshape(-1)
    d[(d & 0x7FFF) == 0] = 0
    b[:, :2] = d.view(np.uint8).reshape(-1, 2)
    amax = np.abs(x.reshape(-1, 32)).max(axis=1)
    with np.errstate(divide="ignore", over="ignore"):
        overflow = np.isinf(np.float32(1) / (amax / np.float32(127 if t == Q8_0 else 8))) & (amax > 0)
    b[overflow, 2:] = 0
    return b.reshape(-1)


@pytest.mark.parametrize("t", [Q8_0, Q4_0])
def test_quantize_matches_gguf(t, rng):
    for x in _families(rng, 32 * 61):
        ref = gguf_quantize(x, GGUF_TYPE[t])
        assert np.array_equal(_zero_sign_free(t, quantize(t, x), x), _zero_sign_free(t, ref, x))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4, width=32, allow_subnormal=True), min_size=32, max_size=32 * 4)
       .map(lambda v: np.array(v[: len(v) // 32 * 32], np.float32)))
def test_quantize_q4_0_q8_0_any_finite_block(x):
    for t in (Q4_0, Q8_0):
        ref = gguf_quantize(x, GGUF_TYPE[t])
        assert np.array_equal(_zero_sign_free(t, quantize(t, x), x), _zero_sign_free(t, ref, x))


def test_float_formats_match_numpy(rng):
    x = np.concatenate([rng.standard_normal(1000) * 10.0 ** rng.integers(-8, 6, 1000),
                        [0.0, -0.0, np.inf, -np.inf, 65504, 65520, 1e-8]]).astype(np.float32)
    with np.errstate(over="ignore"):
        assert np.array_equal(quantize(F16, x), x.astype(np.float16).view(np.uint8))
    bf = gguf_quantize(x, GT.BF16)
    assert np.array_equal(quantize(BF16, x), bf)


# ---- activation quantizers: every ISA equals ggml's reference ---------------------------------------------
@pytest.mark.parametrize("isa", ISAS)
def test_quantize_act_q8_0_matches_reference(isa, rng):
    for x in _families(rng, 32 * 37):
        ref = gguf_quantize(x, GT.Q8_0)
        assert np.array_equal(quantize_act(isa, Q8_0, x), ref)


@pytest.mark.parametrize("isa", ISAS)
def test_quantize_act_q8_k_matches_ggml_reference(isa, rng):
    n = 256 * 11
    for x in _families(rng, n):
        # an exact tie pattern at scale 1: max |x| = 127
        x = x.copy()
        x[256:512] = rng.integers(-126, 126, 256) + 0.5
        x[300] = -127.0
        assert np.array_equal(quantize_act(isa, Q8_K, x), q8k_reference(x))


# ---- our K-quant quantizers ---------------------------------------------------------------------------------
# Measured on gaussian data: Q4_K 0.0704, Q6_K 0.0177 relative RMSE (ggml's own reference quantizers: 0.0710,
# 0.0177); the naive min/max versions 0.078 and 0.0192. The bounds leave room for the random draw only.
@pytest.mark.parametrize("t,naive,bound", [(Q4_K, naive_q4k, 0.0725), (Q6_K, naive_q6k, 0.0182)])
def test_kquant_round_trip_error(t, naive, bound, rng):
    x = (rng.standard_normal(256 * 64) * 0.02).astype(np.float32)
    ours = rel_rmse(x, dequantize(t, quantize(t, x), x.size))
    plain = rel_rmse(x, naive(x))
    print(f"type {t}: ours {ours:.4f}, naive {plain:.4f}")
    assert ours <= plain
    assert ours <= bound


@pytest.mark.parametrize("t", [Q4_K, Q6_K])
def test_kquant_output_decodes_in_gguf(t, rng):
    x = (rng.standard_normal(256 * 8) * 3).astype(np.float32)
    raw = quantize(t, x)
    blck, size = block(t)
    ref = quants.dequantize(raw.reshape(-1, size), GGUF_TYPE[t]).reshape(-1)
    assert np.array_equal(dequantize(t, raw, x.size), ref)


@pytest.mark.parametrize("t", [Q4_K, Q6_K])
def test_kquant_imatrix_favors_important_columns(t, rng):
    rows, cols = 8, 512
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    imp = np.ones(cols, np.float32)
    imp[::4] = 50.0
    plain = np.zeros(rows * lib.ckls_row_bytes(t, cols), np.uint8)
    weighted = np.zeros_like(plain)
    assert lib.ckls_quantize_rows(t, _f32p(x), ffi.from_buffer(plain), rows, cols, ffi.NULL) == 0
    assert lib.ckls_quantize_rows(t, _f32p(x), ffi.from_buffer(weighted), rows, cols, _f32p(imp)) == 0
    y_plain = dequantize(t, plain, rows * cols).reshape(rows, cols)
    y_weighted = dequantize(t, weighted, rows * cols).reshape(rows, cols)
    err = lambda y: float(np.sum((imp * (y - x) ** 2)))  # noqa: E731 - importance-weighted error
    assert err(y_weighted) < err(y_plain)
    # plain rows through quantize_rows equal quantize_row
    assert np.array_equal(plain[: lib.ckls_row_bytes(t, cols)], quantize(t, x[0]))


def test_quantize_degenerate_blocks():
    for t in (Q4_0, Q8_0, Q4_K, Q6_K):
        blck, _ = block(t)
        for x in (np.zeros(blck, np.float32), np.full(blck, 3.5, np.float32), np.full(blck, -1e-3, np.float32)):
            y = dequantize(t, quantize(t, x), blck)
            assert np.all(np.isfinite(y))
            assert np.max(np.abs(y - x)) <= 0.07 * max(1e-30, np.max(np.abs(x))) + 1e-12, (t, x[0], y[:4])


# ---- dots: every ISA against numpy on the dequantized operands ---------------------------------------------
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("t", WEIGHT_TYPES)
def test_vec_dot_matches_numpy(isa, t, rng):
    blck, _ = block(t)
    vt = lib.ckls_type_vec_dot_type(t)
    for nb in (1, 3, 7, 33):
        n = blck * nb if blck > 1 else 37 * nb
        w = quantize(t, rng.standard_normal(n).astype(np.float32) * 0.1)
        x = rng.standard_normal(n).astype(np.float32)
        xq = quantize_act(isa, vt, x)
        wf = dequantize(t, w, n).astype(np.float64)
        xf = (deq_q8k(xq) if vt == Q8_K else dequantize(vt, xq, n)).astype(np.float64)
        ref, mag = float(wf @ xf), float(np.abs(wf * xf).sum())
        assert abs(vec_dot(isa, t, n, w, xq) - ref) <= 3e-5 * mag


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("t", WEIGHT_TYPES)
def test_vec_dot_rows_matches_single_rows(isa, t, rng):
    """The row loop (4-row kernels where the ISA has them, then a 1-row tail) against one call per row."""
    blck, _ = block(t)
    vt = lib.ckls_type_vec_dot_type(t)
    n, rows = (blck * 3 if blck > 1 else 101), 11
    w = np.concatenate([quantize(t, rng.standard_normal(n).astype(np.float32)) for _ in range(rows)])
    xq = quantize_act(isa, vt, rng.standard_normal(n).astype(np.float32))
    out = np.full(rows, np.nan, np.float32)
    assert lib.ckls_kernel_vec_dot_rows(isa, t, rows, n, ffi.from_buffer(w), ffi.from_buffer(xq), _f32p(out)) == 0
    rb = lib.ckls_row_bytes(t, n)
    single = np.array([vec_dot(isa, t, n, w[r * rb:(r + 1) * rb], xq) for r in range(rows)], np.float32)
    np.testing.assert_allclose(out, single, rtol=1e-5, atol=1e-5 * float(np.abs(single).max()))


# ---- bad input -----------------------------------------------------------------------------------------------
def test_bad_input_returns_status_and_message():
    x = np.ones(64, np.float32)
    buf = np.zeros(4096, np.uint8)
    out = ffi.new("float *")
    cases = [
        lambda: lib.ckls_quantize_row(Q4_K, _f32p(x), ffi.from_buffer(buf), 64),  # not a block multiple
        lambda: lib.ckls_quantize_row(Q4_0, _f32p(x), ffi.from_buffer(buf), 33),
        lambda: lib.ckls_quantize_row(Q4_0, _f32p(x), ffi.from_buffer(buf), -32),
        lambda: lib.ckls_quantize_row(3, _f32p(x), ffi.from_buffer(buf), 64),  # Q4_1: not supported
        lambda: lib.ckls_quantize_row(999, _f32p(x), ffi.from_buffer(buf), 64),
        lambda: lib.ckls_quantize_row(Q4_0, ffi.NULL, ffi.from_buffer(buf), 64),
        lambda: lib.ckls_dequantize_row(Q6_K, ffi.from_buffer(buf), ffi.NULL, 256),
        lambda: lib.ckls_kernel_vec_dot(0, Q4_0, 64, ffi.from_buffer(buf), ffi.from_buffer(buf), ffi.NULL),
        lambda: lib.ckls_kernel_vec_dot(0, Q6_K, 100, ffi.from_buffer(buf), ffi.from_buffer(buf), out),
        lambda: lib.ckls_kernel_vec_dot(99, Q8_0, 32, ffi.from_buffer(buf), ffi.from_buffer(buf), out),
        lambda: lib.ckls_kernel_quantize_act(0, Q4_K, _f32p(x), ffi.from_buffer(buf), 0),  # not an activation type
        lambda: lib.ckls_kernel_quantize_act(-1, Q8_0, _f32p(x), ffi.from_buffer(buf), 32),
        lambda: lib.ckls_quantize_rows(Q4_0, _f32p(x), ffi.from_buffer(buf), -1, 32, ffi.NULL),
        lambda: lib.ckls_kernel_vec_dot_rows(0, Q4_K, 2, 100, ffi.from_buffer(buf), ffi.from_buffer(buf), out),
        lambda: lib.ckls_kernel_vec_dot_rows(0, Q8_0, -1, 32, ffi.from_buffer(buf), ffi.from_buffer(buf), out),
        lambda: lib.ckls_kernel_vec_dot_rows(0, Q8_0, 1, 32, ffi.NULL, ffi.from_buffer(buf), out),
        lambda: lib.ckls_kernel_vec_dot_rows(0, 5, 1, 32, ffi.from_buffer(buf), ffi.from_buffer(buf), out),
    ]
    for i, call in enumerate(cases):
        assert call() < 0, i
        assert last_error(), i
    unavailable = [isa for isa in range(lib.CKLS_ISA_COUNT) if not lib.ckls_isa_available(isa)]
    for isa in unavailable:
        assert lib.ckls_kernel_vec_dot(isa, Q8_0, 32, ffi.from_buffer(buf), ffi.from_buffer(buf), out) < 0
        assert lib.ckls_set_isa(isa) < 0


def test_empty_rows_are_fine():
    assert lib.ckls_quantize_row(Q4_K, ffi.NULL, ffi.NULL, 0) == 0
    assert lib.ckls_dequantize_row(Q6_K, ffi.NULL, ffi.NULL, 0) == 0


# ---- llama.cpp's ggml (through llama-cpp-python's shared libraries) ------------------------------------------
@pytest.fixture(scope="module")
def ggml():
    import ctypes
    import os
    import pathlib

    def unavailable(msg):
        if os.environ.get("CKLS_REQUIRE_PARITY") == "1":
            pytest.fail(msg + " and CKLS_REQUIRE_PARITY=1")
        pytest.skip(msg)

    try:
        import llama_cpp
    except ImportError:
        unavailable("llama-cpp-python is not installed (pip install .[parity])")
    libdir = pathlib.Path(llama_cpp.__file__).parent / "lib"
    try:
        base = ctypes.CDLL(str(libdir / "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
        cpu = ctypes.CDLL(str(libdir / "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        unavailable(f"ggml shared libraries of llama-cpp-python not loadable: {exc}")
    cpu.ggml_cpu_init()  # fills ggml's f16 tables
    P, I64 = ctypes.c_void_p, ctypes.c_int64
    for lib_, name in [(base, "quantize_row_q8_0_ref"), (base, "quantize_row_q4_0_ref"), (base, "quantize_row_q8_K_ref"), (cpu, "quantize_row_q8_K"),
                       (base, "quantize_row_q4_K_ref"), (base, "quantize_row_q6_K_ref")]:
        getattr(lib_, name).argtypes = [P, P, I64]
    for name in ["ggml_vec_dot_q8_0_q8_0", "ggml_vec_dot_q4_0_q8_0", "ggml_vec_dot_q4_K_q8_K", "ggml_vec_dot_q6_K_q8_K"]:
        getattr(cpu, name).argtypes = [ctypes.c_int, P, ctypes.c_size_t, P, ctypes.c_size_t, P, ctypes.c_size_t,
                                       ctypes.c_int]
    return base, cpu


def _ggml_quantize(fn, t: int, x: np.ndarray) -> np.ndarray:
    out = np.zeros(lib.ckls_row_bytes(t, x.size), np.uint8)
    fn(x.ctypes.data, out.ctypes.data, x.size)
    return out


@pytest.mark.parity
@pytest.mark.parametrize("isa", ISAS)
def test_activation_quantizers_match_ggml(ggml, isa, rng):
    base, cpu = ggml
    for x in _families(rng, 256 * 9):
        x = np.ascontiguousarray(x)
        assert np.array_equal(quantize_act(isa, Q8_0, x), _ggml_quantize(base.quantize_row_q8_0_ref, Q8_0, x))
        ours = quantize_act(isa, Q8_K, x)
        assert np.array_equal(ours, _ggml_quantize(base.quantize_row_q8_K_ref, Q8_K, x))
        assert np.array_equal(ours, _ggml_quantize(cpu.quantize_row_q8_K, Q8_K, x))  # what llama.cpp runs


@pytest.mark.parity
def test_quantizers_match_ggml(ggml, rng):
    base, _ = ggml
    for x in _families(rng, 32 * 61):
        x = np.ascontiguousarray(x)
        x[:32] = 0  # an all-zero block: d = -0.0 in ggml's C
        assert np.array_equal(quantize(Q4_0, x), _ggml_quantize(base.quantize_row_q4_0_ref, Q4_0, x))
        assert np.array_equal(quantize(Q8_0, x), _ggml_quantize(base.quantize_row_q8_0_ref, Q8_0, x))


@pytest.mark.parity
@pytest.mark.parametrize("t", [Q4_K, Q6_K])
def test_kquant_quantizer_at_least_as_good_as_ggml(ggml, t, rng):
    base, _ = ggml
    fn = base.quantize_row_q4_K_ref if t == Q4_K else base.quantize_row_q6_K_ref
    x = (rng.standard_normal(256 * 64) * 0.02).astype(np.float32)
    ours = rel_rmse(x, dequantize(t, quantize(t, x), x.size))
    theirs = rel_rmse(x, dequantize(t, _ggml_quantize(fn, t, x), x.size))
    print(f"type {t}: ours {ours:.5f}, ggml {theirs:.5f}")
    assert ours <= theirs * 1.001


@pytest.mark.parity
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("t,name", [(Q8_0, "q8_0_q8_0"), (Q4_0, "q4_0_q8_0"), (Q4_K, "q4_K_q8_K"),
                                    (Q6_K, "q6_K_q8_K")])
def test_vec_dot_matches_ggml(ggml, isa, t, name, rng):
    import ctypes

    _, cpu = ggml
    fn = getattr(cpu, f"ggml_vec_dot_{name}")
    blck, _ = block(t)
    vt = lib.ckls_type_vec_dot_type(t)
    for nb in (1, 2, 5, 19):
        n = blck * nb if blck == 256 else blck * nb * 8
        w = quantize(t, rng.standard_normal(n).astype(np.float32) * 0.05)
        xq = quantize_act(isa, vt, rng.standard_normal(n).astype(np.float32))
        s = ctypes.c_float()
        fn(n, ctypes.addressof(s), 0, w.ctypes.data, 0, xq.ctypes.data, 0, 1)
        wf = dequantize(t, w, n).astype(np.float64)
        xf = (deq_q8k(xq) if vt == Q8_K else dequantize(vt, xq, n)).astype(np.float64)
        mag = float(np.abs(wf * xf).sum())
        assert abs(vec_dot(isa, t, n, w, xq) - s.value) <= 2e-6 * mag
