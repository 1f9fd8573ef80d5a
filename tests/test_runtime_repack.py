"""Q4 and Q8_0 matrices repacked at load into interleaved 8-row groups: the model's logits stay those of the row
kernels on the mapped file, whatever the ISA is switched to after loading. "Within float reordering" means an
RMS difference of about 1e-2 of the logits' spread here: the random synthetic models requantize activations at
every matrix, so a last-bit difference can flip a rounding step (the scalar and row-kernel paths differ as much).
The kernels themselves are checked bit for bit in native/tests/test_kernels.c.

tiny at q4_k is Q4_0 throughout (64-wide rows), mini is Q4_K; both have row counts with and without a tail
beyond the last full group of 8 (kv 32 / 128, vocab 1000).

Q8_0's 8-row kernel does per (row, token) what its row kernels do, so there the logits must be identical, bit for
bit, repacked or not, prompt or decode; the vocabulary of 1007 leaves a tail of 7 rows (a 4-row block and three
single rows) beyond the last group."""
from __future__ import annotations

import numpy as np
import pytest

from ckls.native import check, lib
from reference_forward import rel
from ckls.runtime import load_model
from ckls.runtime.synth import synth_model


# ISAs without 8-row kernels: nothing is repacked (NEON needs the dot-product extension for them: neondot)
NO_GEMM_X8 = (lib.CKLS_ISA_SCALAR, lib.CKLS_ISA_NEON)


@pytest.fixture(scope="module", params=["tiny", "mini"])
def q4_path(request, tmp_path_factory):
    p = tmp_path_factory.mktemp("repack") / f"{request.param}.gguf"
    synth_model(p, arch="qwen2", shape=request.param, type="q4_k", seed=5)
    return p


def _logits(path, toks):
    with load_model(path, n_ctx=256, n_threads=2) as m:
        return m.eval(toks, logits_all=True), np.array([m.eval([t], pos0=i) for i, t in enumerate(toks[:8])])


def test_repacked_matches_row_kernels(q4_path, monkeypatch):
    if lib.ckls_isa_active() in NO_GEMM_X8:
        pytest.skip("no 8-row kernels here: nothing is repacked")
    toks = [int(t) for t in np.random.default_rng(1).integers(0, 1000, 40)]
    monkeypatch.setenv("CKLS_REPACK", "0")
    rows, rows_step = _logits(q4_path, toks)
    monkeypatch.setenv("CKLS_REPACK", "1")
    packed, packed_step = _logits(q4_path, toks)
    assert rel(packed, rows) < 0.03
    assert rel(packed_step, packed[:8]) < 0.03
    assert rel(rows_step, rows[:8]) < 0.03


def test_isa_switched_after_load_falls_back(q4_path):
    toks = [int(t) for t in np.random.default_rng(2).integers(0, 1000, 20)]
    isa = lib.ckls_isa_active()
    with load_model(q4_path, n_ctx=64, n_threads=2) as m:
        want = m.eval(toks, logits_all=True)
        check(lib.ckls_set_isa(lib.CKLS_ISA_SCALAR))  # no 8-row kernels: the mapped rows are used
        try:
            got = m.eval(toks, pos0=0, logits_all=True)
        finally:
            check(lib.ckls_set_isa(isa))
        again = m.eval(toks, pos0=0, logits_all=True)
    assert rel(got, want) < 0.03
    np.testing.assert_array_equal(again, want)


@pytest.fixture(scope="module")
def q8_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("repack") / "q8.gguf"
    shape = dict(n_vocab=1007, n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=160, n_ctx_train=2048)
    synth_model(p, arch="qwen2", shape=shape, type="q8_0", seed=7)
    return p


def test_q8_0_repacked_is_bit_identical(q8_path, monkeypatch):
    if lib.ckls_isa_active() in NO_GEMM_X8:
        pytest.skip("no 8-row kernels here: nothing is repacked")
    toks = [int(t) for t in np.random.default_rng(3).integers(0, 1000, 37)]
    monkeypatch.setenv("CKLS_REPACK", "0")
    with load_model(q8_path, n_ctx=64, n_threads=2) as m:
        assert lib.ckls_model_packed_bytes(m._ptr) == 0
    rows, rows_step = _logits(q8_path, toks)
    monkeypatch.setenv("CKLS_REPACK", "1")
    with load_model(q8_path, n_ctx=64, n_threads=2) as m:  # every Q8_0 matrix has a full group: all repacked
        assert lib.ckls_model_packed_bytes(m._ptr) > 0
    packed, packed_step = _logits(q8_path, toks)
    np.testing.assert_array_equal(packed, rows)
    np.testing.assert_array_equal(packed_step, rows_step)
    np.testing.assert_array_equal(packed_step, packed[:8])


@pytest.fixture(scope="module")
def q6_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("repack") / "q6.gguf"
    shape = dict(n_vocab=1007, n_embd=256, n_layer=2, n_head=4, n_head_kv=2, n_ff=512, n_ctx_train=2048)
    synth_model(p, arch="qwen2", shape=shape, type="q6_k", seed=11)
    return p


def test_q6_k_repacked_matches_row_kernels(q6_path, monkeypatch):
    """Q6_K is repacked only where the ISA has an 8-row kernel for it (VNNI); the groups then go through it and the
    7 tail rows of the vocabulary through the row dots, within float reordering of the row path."""
    if lib.ckls_isa_active() not in (lib.CKLS_ISA_AVX512VNNI, lib.CKLS_ISA_AMX, lib.CKLS_ISA_AVXVNNI):
        pytest.skip("Q6_K has an 8-row kernel only with AVX-512 VNNI (AMX inherits it) or AVX-VNNI")
    toks = [int(t) for t in np.random.default_rng(4).integers(0, 1000, 37)]
    monkeypatch.setenv("CKLS_REPACK", "0")
    rows, rows_step = _logits(q6_path, toks)
    monkeypatch.setenv("CKLS_REPACK", "1")
    with load_model(q6_path, n_ctx=64, n_threads=2) as m:
        assert lib.ckls_model_packed_bytes(m._ptr) > 0
    packed, packed_step = _logits(q6_path, toks)
    assert rel(packed, rows) < 0.03
    assert rel(packed_step, packed[:8]) < 0.03
    assert rel(rows_step, rows[:8]) < 0.03
