"""The forward ops of the C core against float64 NumPy, on fresh random data with odd sizes each run."""
from __future__ import annotations

import numpy as np
import pytest

from ckls.native import ffi, lib

def fptr(a: np.ndarray):
    assert a.dtype == np.float32 and a.flags.c_contiguous
    return ffi.from_buffer("float[]", a)


@pytest.fixture(scope="module")
def pools():
    ps = {n: lib.ckls_pool_create(n) for n in (1, 2, 3)}
    yield ps
    for p in ps.values():
        lib.ckls_pool_free(p)


TYPES = {"f32": lib.CKLS_TYPE_F32, "f16": lib.CKLS_TYPE_F16, "bf16": lib.CKLS_TYPE_BF16,
         "q8_0": lib.CKLS_TYPE_Q8_0, "q4_0": lib.CKLS_TYPE_Q4_0, "q4_k": lib.CKLS_TYPE_Q4_K,
         "q6_k": lib.CKLS_TYPE_Q6_K}


def quantize(type_id: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (quantized bytes, what they dequantize to)."""
    n_out, n_in = w.shape
    rb = lib.ckls_row_bytes(type_id, n_in)
    q = np.zeros((n_out, rb), dtype=np.uint8)
    assert lib.ckls_quantize_rows(type_id, fptr(w), ffi.from_buffer(q), n_out, n_in, ffi.NULL) == 0
    deq = np.zeros_like(w)
    for r in range(n_out):
        assert lib.ckls_dequantize_row(type_id, ffi.from_buffer(q[r]), fptr(deq[r]), n_in) == 0
    return q, deq


@pytest.mark.parametrize("name", list(TYPES))
def test_matmul_matches_dequantized_product(name, rng, pools):
    t = TYPES[name]
    blk = max(lib.ckls_type_block_size(t), lib.ckls_type_block_size(lib.ckls_type_vec_dot_type(t)))
    n_in = blk * int(rng.choice([1, 3, 5]))
    n_out = int(rng.integers(1, 70))
    n_tok = int(rng.choice([1, 2, 17, 33]))
    w = rng.standard_normal((n_out, n_in)).astype(np.float32)
    x = rng.standard_normal((n_tok, n_in)).astype(np.float32)
    q, deq = quantize(t, w)
    ref = x.astype(np.float64) @ deq.astype(np.float64).T
    outs = []
    for nth, pool in pools.items():
        y = np.full((n_tok, n_out), np.nan, dtype=np.float32)
        assert lib.ckls_matmul(pool, t, ffi.from_buffer(q), n_out, n_in, fptr(x), n_tok, fptr(y)) == 0
        outs.append(y)
    # Activations are quantized to 8 bits for the integer formats: error ~ |x|·|w|·2^-8 per element.
    act = lib.ckls_type_vec_dot_type(t)
    tol = 1e-4 if act == lib.CKLS_TYPE_F32 else 0.02
    scale = np.abs(x) @ np.abs(deq).T
    assert np.all(np.abs(outs[0] - ref) <= tol * scale + 1e-5), f"{name}: max err {np.abs(outs[0] - ref).max()}"
    for y in outs[1:]:  # every output element is computed by one thread in a fixed order: bit-identical
        np.testing.assert_array_equal(y, outs[0])


def test_matmul_rejects_bad_sizes(pools):
    w = np.zeros(64, dtype=np.uint8)
    x = np.zeros(40, dtype=np.float32)
    y = np.zeros(4, dtype=np.float32)
    assert lib.ckls_matmul(pools[1], lib.CKLS_TYPE_Q8_0, ffi.from_buffer(w), 1, 40, fptr(x), 1, fptr(y)) < 0
    assert b"multiple" in ffi.string(lib.ckls_last_error())
    assert lib.ckls_matmul(pools[1], 99, ffi.from_buffer(w), 1, 32, fptr(x), 1, fptr(y)) < 0


def test_rmsnorm(rng):
    n_rows, n = 3, int(rng.integers(1, 300))
    x = rng.standard_normal((n_rows, n)).astype(np.float32) * 3
    w = rng.standard_normal(n).astype(np.float32)
    y = np.empty_like(x)
    assert lib.ckls_rmsnorm(fptr(x), fptr(w), fptr(y), n_rows, n, 1e-5) == 0
    xd = x.astype(np.float64)
    ref = xd / np.sqrt((xd ** 2).mean(-1, keepdims=True) + 1e-5) * w
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["norm", "neox"])
def test_rope(mode, rng):
    n_tok, n_head, head_dim = 5, 3, 2 * int(rng.integers(2, 40))
    n_rot = head_dim if rng.random() < 0.5 else 2 * int(rng.integers(1, head_dim // 2 + 1))
    base = 10000.0
    x = rng.standard_normal((n_tok, n_head, head_dim)).astype(np.float32)
    pos = rng.integers(0, 3000, n_tok).astype(np.int32)
    y = x.copy()
    m = lib.CKLS_ROPE_NORM if mode == "norm" else lib.CKLS_ROPE_NEOX
    assert lib.ckls_rope(fptr(y), n_tok, n_head, head_dim, ffi.from_buffer("int32_t[]", pos), n_rot, base, m) == 0
    ref = x.astype(np.float64).copy()
    half = n_rot // 2
    theta = pos[:, None].astype(np.float64) * base ** (-2.0 * np.arange(half) / n_rot)
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    if mode == "norm":
        a, b = ref[..., 0:n_rot:2].copy(), ref[..., 1:n_rot:2].copy()
        ref[..., 0:n_rot:2], ref[..., 1:n_rot:2] = a * c - b * s, a * s + b * c
    else:
        a, b = ref[..., :half].copy(), ref[..., half:n_rot].copy()
        ref[..., :half], ref[..., half:n_rot] = a * c - b * s, a * s + b * c
    # float theta accumulation (as ggml) drifts slightly at large positions
    np.testing.assert_allclose(y, ref, atol=3e-3 * np.abs(x).max())
    np.testing.assert_array_equal(y[..., n_rot:], x[..., n_rot:])


def test_softmax_and_swiglu(rng):
    n = int(rng.integers(1, 500))
    x = (rng.standard_normal((2, n)) * 10).astype(np.float32)
    y = x.copy()
    assert lib.ckls_softmax(fptr(y), 2, n) == 0
    e = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
    g, u = rng.standard_normal(n).astype(np.float32) * 4, rng.standard_normal(n).astype(np.float32)
    out = np.empty_like(g)
    assert lib.ckls_swiglu(fptr(g), fptr(u), fptr(out), n) == 0
    gd = g.astype(np.float64)
    np.testing.assert_allclose(out, gd / (1 + np.exp(-gd)) * u, rtol=1e-5, atol=1e-6)


ISAS = [i for i in range(lib.CKLS_ISA_COUNT) if lib.ckls_isa_available(i)]


@pytest.fixture
def isa(request):
    lib.ckls_set_isa(request.param)
    yield request.param
    lib.ckls_set_isa(lib.ckls_isa_detected())


@pytest.mark.parametrize("isa", ISAS, indirect=True, ids=lambda i: ffi.string(lib.ckls_isa_name(i)).decode())
@pytest.mark.parametrize("nth", [1, 2])
def test_attention_causal_gqa(nth, isa, rng, pools):
    n_head_kv = int(rng.integers(1, 4))
    n_head = n_head_kv * int(rng.integers(1, 8))
    head_dim = int(rng.choice([8, 12, 24, 40, 64, 128]))
    pos0, n_tok = int(rng.integers(0, 20)), int(rng.integers(1, 9))
    n_kv = pos0 + n_tok
    kv_stride = n_head_kv * head_dim
    q = rng.standard_normal((n_tok, n_head, head_dim)).astype(np.float32)
    k = rng.standard_normal((n_kv, n_head_kv, head_dim)).astype(np.float32)
    v = rng.standard_normal((n_kv, n_head_kv, head_dim)).astype(np.float32)
    out = np.empty_like(q)
    assert lib.ckls_attention(pools[nth], fptr(q), fptr(k), fptr(v), fptr(out), n_tok, pos0, n_head, n_head_kv,
                              head_dim, kv_stride) == 0
    ref = np.empty(q.shape)
    for t in range(n_tok):
        for h in range(n_head):
            kh = h // (n_head // n_head_kv)
            s = k[: pos0 + t + 1, kh].astype(np.float64) @ q[t, h] / np.sqrt(head_dim)
            p = np.exp(s - s.max())
            p /= p.sum()
            ref[t, h] = p @ v[: pos0 + t + 1, kh]
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_sampler(rng):
    n = 1000
    logits = rng.standard_normal(n).astype(np.float32)
    greedy = ffi.new("ckls_sampler_params *", {"temperature": 0.0, "top_p": 1.0, "repeat_penalty": 1.0})
    assert lib.ckls_sample(fptr(logits.copy()), n, greedy, ffi.NULL, ffi.NULL, 0) == int(np.argmax(logits))
    topk1 = ffi.new("ckls_sampler_params *", {"temperature": 1.0, "top_k": 1, "top_p": 1.0, "repeat_penalty": 1.0})
    state = ffi.new("uint64_t *", 7)
    for _ in range(5):
        assert lib.ckls_sample(fptr(logits.copy()), n, topk1, state, ffi.NULL, 0) == int(np.argmax(logits))
    # temperature sampling follows softmax: a 3-way distribution sampled 6000 times
    small = np.log(np.array([0.6, 0.3, 0.1], dtype=np.float32))
    p = ffi.new("ckls_sampler_params *", {"temperature": 1.0, "top_p": 1.0, "repeat_penalty": 1.0})
    state = ffi.new("uint64_t *", 12345)
    counts = np.bincount([lib.ckls_sample(fptr(small.copy()), 3, p, state, ffi.NULL, 0) for _ in range(6000)],
                         minlength=3) / 6000
    np.testing.assert_allclose(counts, [0.6, 0.3, 0.1], atol=0.03)
    # top-p 0.5 keeps only the most likely token here
    pp = ffi.new("ckls_sampler_params *", {"temperature": 1.0, "top_p": 0.5, "repeat_penalty": 1.0})
    assert {lib.ckls_sample(fptr(small.copy()), 3, pp, state, ffi.NULL, 0) for _ in range(50)} == {0}
    # same seed, same sequence
    def draw(seed):
        s = ffi.new("uint64_t *", seed)
        return [lib.ckls_sample(fptr(logits.copy()), n, p, s, ffi.NULL, 0) for _ in range(20)]
    assert draw(99) == draw(99) and draw(99) != draw(100)


def test_pool_lifecycle():
    assert lib.ckls_pool_create(0) == ffi.NULL
    assert b"thread count" in ffi.string(lib.ckls_last_error())
    for n in (1, 2, 4, 1, 3):
        p = lib.ckls_pool_create(n)
        assert p != ffi.NULL and lib.ckls_pool_threads(p) == n
        lib.ckls_pool_free(p)


@pytest.mark.parametrize("name", list(TYPES))
def test_matmul_batched_tokens_equal_single_token(name, rng, pools):
    """Multi-token tiles (4-row / 4-token kernels) give exactly what one token at a time gives."""
    t = TYPES[name]
    blk = max(lib.ckls_type_block_size(t), lib.ckls_type_block_size(lib.ckls_type_vec_dot_type(t)))
    n_in, n_out, n_tok = blk * 3, 4 * int(rng.integers(1, 6)) + int(rng.integers(0, 4)), 4 * 3 + 3
    w = rng.standard_normal((n_out, n_in)).astype(np.float32)
    x = rng.standard_normal((n_tok, n_in)).astype(np.float32)
    q, _ = quantize(t, w)
    y = np.empty((n_tok, n_out), dtype=np.float32)
    assert lib.ckls_matmul(pools[2], t, ffi.from_buffer(q), n_out, n_in, fptr(x), n_tok, fptr(y)) == 0
    for i in range(n_tok):
        yi = np.empty(n_out, dtype=np.float32)
        xi = np.ascontiguousarray(x[i])
        assert lib.ckls_matmul(pools[1], t, ffi.from_buffer(q), n_out, n_in, fptr(xi), 1, fptr(yi)) == 0
        np.testing.assert_array_equal(y[i], yi)
