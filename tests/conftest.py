"""Shared fixtures: synthetic models written once per session, and llama.cpp (llama-cpp-python) as a peer."""
from __future__ import annotations

import ctypes
import os
import sys
import threading

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # helper modules beside the tests (reference_forward)

REQUIRE_PARITY = os.environ.get("CKLS_REQUIRE_PARITY") == "1"


def import_llama_cpp():
    """llama_cpp, or a skip (a failure when CKLS_REQUIRE_PARITY=1)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        if REQUIRE_PARITY:
            pytest.fail(f"CKLS_REQUIRE_PARITY=1 but llama_cpp cannot be imported: {exc}")
        pytest.skip("llama-cpp-python is not installed (pip install .[parity])")
    return llama_cpp


class ModelStore:
    """Writes synthetic models on first request into one session directory and hands back their paths."""

    def __init__(self, root):
        self.root = root
        self.paths: dict[tuple, str] = {}
        self.lock = threading.Lock()

    def get(self, arch: str, shape: str = "tiny", type: str = "f32", seed: int = 0) -> str:
        from ckls.runtime.synth import synth_model

        key = (arch, shape, type, seed)
        with self.lock:
            if key not in self.paths:
                path = os.path.join(self.root, f"{arch}-{shape}-{type}-s{seed}.gguf")
                synth_model(path, arch, shape, type, seed)
                self.paths[key] = path
            return self.paths[key]


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> ModelStore:
    return ModelStore(str(tmp_path_factory.mktemp("models")))


class LlamaPeer:
    """llama.cpp through llama-cpp-python: logits of every position and greedy continuations."""

    def __init__(self, llama_cpp):
        self.lc = llama_cpp
        self.cache: dict[str, object] = {}

    def model(self, path: str, n_ctx: int = 256):
        key = f"{path}:{n_ctx}"
        if key not in self.cache:
            # f32 KV cache: llama.cpp's default f16 cache would round keys and values that ckls keeps exact
            self.cache[key] = self.lc.Llama(model_path=path, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
                                            n_threads=2, n_threads_batch=2, logits_all=True, verbose=False,
                                            type_k=0, type_v=0, seed=0)
        return self.cache[key]

    def logits(self, path: str, tokens: list[int]) -> np.ndarray:
        llm = self.model(path)
        llm.reset()
        llm.eval(list(tokens))
        return np.array(llm.scores[: llm.n_tokens], dtype=np.float32)

    def greedy(self, path: str, prompt: list[int], n: int) -> list[int]:
        llm = self.model(path)
        llm.reset()
        llm.eval(list(prompt))
        out = []
        for _ in range(n):
            t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            out.append(t)
            llm.eval([t])
        return out

    def quantize(self, src: str, dst: str, ftype_name: str) -> None:
        """llama.cpp's own quantizer (llama_model_quantize, default params) with ftype e.g. MOSTLY_Q4_K_M."""
        lc = self.lc
        params = lc.llama_model_quantize_default_params()
        params.ftype = getattr(lc, f"LLAMA_FTYPE_{ftype_name}")
        params.nthread = 2
        rc = lc.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
        if rc != 0:
            raise RuntimeError(f"llama_model_quantize({ftype_name}) failed with {rc}")

    def close(self):
        for llm in self.cache.values():
            llm.close()
        self.cache.clear()


@pytest.fixture(scope="session")
def llama_peer():
    peer = LlamaPeer(import_llama_cpp())
    yield peer
    peer.close()

