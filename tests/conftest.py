"""Shared fixtures: synthetic models written once per session, llama.cpp (llama-cpp-python) as a peer, the tuning
tests' git repository, and random generators whose seed is fresh each run and shown when a test fails.

Helper modules beside the tests (server_fixtures, tune_fixtures, reference_forward...) are importable by name
through pytest's `pythonpath` setting (pyproject.toml), not by editing sys.path here; the checkout itself stays off
sys.path, so scripts/test still tests the installed package.
"""
from __future__ import annotations

import ctypes
import os
import random
import threading

import numpy as np
import pytest

REQUIRE_PARITY = os.environ.get("CKLS_REQUIRE_PARITY") == "1"


def import_llama_cpp():
    """llama_cpp, or a skip (a failure when CKLS_REQUIRE_PARITY=1). A build with llama.cpp's AMX kernels is refused
    the same way: on Sapphire Rapids-class CPUs they segfault on the first batch (llama.cpp#20824), which would kill
    the whole test run; .ci/run builds without them (CKLS_PEER_AMX=1 lets such a build run where its AMX works)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        if REQUIRE_PARITY:
            pytest.fail(f"CKLS_REQUIRE_PARITY=1 but llama_cpp cannot be imported: {exc}")
        pytest.skip("llama-cpp-python is not installed (pip install .[parity])")
    if b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info() and os.environ.get("CKLS_PEER_AMX") != "1":
        why = "this llama-cpp-python build runs llama.cpp's AMX kernels (llama.cpp#20824); rebuild it as .ci/run does"
        if REQUIRE_PARITY:
            pytest.fail(f"CKLS_REQUIRE_PARITY=1 but {why}")
        pytest.skip(why)
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

    def lora_logits(self, path: str, lora_path: str, tokens: list[int]) -> np.ndarray:
        """Logits of every position with the adapter file applied by llama.cpp (lora_path): a model of its own,
        closed after, as the adapter is applied to it at load."""
        llm = self.lc.Llama(model_path=path, lora_path=lora_path, n_ctx=64, n_batch=64, n_ubatch=64, n_threads=1,
                            n_threads_batch=1, logits_all=True, verbose=False, type_k=0, type_v=0, seed=0)
        try:
            llm.eval(list(tokens))
            return np.array(llm.scores[: llm.n_tokens], dtype=np.float32)
        finally:
            llm.close()

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



# ---- randomness: fresh each run, reproducible from the seed a failure reports -----------------------------------
SEED_ENV = "CKLS_TEST_SEED"


def fresh_seed() -> int:
    """CKLS_TEST_SEED when set (to replay a failure), else a new 32-bit seed."""
    env = os.environ.get(SEED_ENV)
    return int(env) if env else int(np.random.SeedSequence().entropy % 2**32)


def note_seed(node, seed: int, what: str) -> None:
    """Remembers a seed on a collection node (a test, or the module of a module-scoped fixture) for the report."""
    if not hasattr(node, "_ckls_seeds"):
        node._ckls_seeds = []
    node._ckls_seeds.append((what, seed))


@pytest.fixture
def seed(request) -> int:
    """A fresh seed for this test, reported on failure (rerun with CKLS_TEST_SEED=<seed>)."""
    s = fresh_seed()
    note_seed(request.node, s, "seed")
    return s


@pytest.fixture
def rng(seed) -> np.random.Generator:
    """numpy Generator from the test's reported seed."""
    return np.random.default_rng(seed)


@pytest.fixture
def py_rng(seed) -> random.Random:
    """random.Random from the test's reported seed."""
    return random.Random(seed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        seeds = [s for node in item.listchain() for s in getattr(node, "_ckls_seeds", [])]
        if seeds:
            text = ", ".join(f"{what} {s}" for what, s in seeds)
            report.sections.append(("random seed", f"{text} (replay: {SEED_ENV}={seeds[-1][1]})"))


# ---- the tuning tests' repository ---------------------------------------------------------------------------------
@pytest.fixture
def repo(tmp_path) -> str:
    """A small committed git repository of Python sources plus every kind of file the tuner must skip
    (tests/tune_fixtures.py; the special files' paths are tune_fixtures.SPECIAL)."""
    from tune_fixtures import make_repo

    root = tmp_path / "repo"
    root.mkdir()
    make_repo(root)
    return str(root)


# ---- simulated time for the tuning scheduler (ckls.tune.scheduler.Clock) ------------------------------------------
class FakeClock:
    """ckls.tune.scheduler.Clock in simulated time: now() reads it; wait(cv, timeout) jumps it to the earliest of the
    timeout and the next scheduled event, runs the events due (they stand for other threads: keystrokes, a stop),
    and returns as a notify would. Waits take no wall time, and every time a test asserts is exact.
    Single-threaded: events run in the waiting thread (Activity's condition lock is re-entrant).
    tick: each now() moves time on by this much afterwards (work takes time: a step, a forward between two
    readings); 0, time moves only in waits."""

    def __init__(self, start: float = 1024.0, tick: float = 0.0):
        self.t = float(start)
        self.tick = float(tick)
        self.events: list[tuple[float, int, object]] = []
        self.waits: list[float] = []  # every timeout asked for

    def now(self) -> float:
        t = self.t
        self.t += self.tick
        return t

    def at(self, t: float, fn) -> None:
        """Runs fn() when simulated time reaches t (during a wait)."""
        self.events.append((float(t), len(self.events), fn))
        self.events.sort(key=lambda e: e[:2])

    def advance(self, dt: float) -> None:
        self.t += dt

    def wait(self, cv, timeout: float) -> None:
        self.waits.append(timeout)
        if len(self.waits) > 100_000:
            raise RuntimeError("FakeClock: the code under test waits forever")
        end = self.t + timeout
        if self.events and self.events[0][0] <= end:
            due = self.events[0][0]
            self.t = max(self.t, due)
            while self.events and self.events[0][0] <= due:
                _, _, fn = self.events.pop(0)
                fn()
            return
        self.t = end


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
