"""A bounded token memory of the user's repository, mixed into the next-token distribution (native/src/
ngram_memory.c): a cache n-gram / suffix-match model over the files' token streams (Tu et al. 2014; Hellendoorn
& Devanbu 2017), interpolated kNN-LM-style, p = (1 - w) p_model + w q_memory, with w from the memory's
confidence (how long the matched context is, how many places agree).

`NgramMemory` holds token ids under string keys (file paths); tokenizing text is the caller's business
(ckls.completion.memory.RepoMemory does it with the model's tokenizer). Thread-safe: updates (a save) may come
from any thread while the model thread mixes."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ckls.native import check, ffi, lib

MAX_MATCH = lib.CKLS_NGRAM_MAX_MATCH
MAX_VISITS = lib.CKLS_NGRAM_MAX_VISITS


@dataclass(frozen=True)
class MixRule:
    """How much the memory weighs at a step (see ckls_ngram_mix_weight in native/include/ckls.h)."""
    name: str
    min_match: int = 2
    full_match: int = 0
    lambda_max: float = 0.25
    count_prior: float = 0.0
    agreement: bool = False
    max_visits: int = 256


# The rules compared in bench/repo_memory.py, each fixed before measuring (bench/RESULTS.md says which won):
RULES = {
    # kNN-LM (Khandelwal et al. 2020): a constant weight wherever the memory has a match of 4+ tokens
    "fixed": MixRule("fixed", min_match=4, lambda_max=0.25),
    # cache LM (Tu et al. 2014): w = n / (n + 1) for n occurrences of the longest matched context (4+ tokens)
    "count": MixRule("count", min_match=4, lambda_max=0.95, count_prior=1.0),
    # confidence from the matched length (infini-gram / FT2Ra-style): ramps 0 -> 0.9 from 3 to 16 matched
    # tokens, scaled by the share of the occurrences that agree on the next token
    "length": MixRule("length", min_match=3, full_match=16, lambda_max=0.9, agreement=True),
}
# "length": chosen on stripe (a repository that repeats itself), then measured on others it was not chosen on:
# +0.04 to +0.14 line exact match where a repository repeats itself, +0.005 to +0.008 where it does not
# (bench/RESULTS.md, "The repository memory where a repository repeats itself")
DEFAULT_RULE = "length"


class NgramMemory:
    def __init__(self, capacity_tokens: int = 1 << 20, rule: str | MixRule = DEFAULT_RULE):
        ptr = lib.ckls_ngram_memory_create(int(capacity_tokens))
        if ptr == ffi.NULL:
            from ckls.native import NativeError, last_error

            raise NativeError(lib.CKLS_EINVAL, last_error())
        self._ptr = ffi.gc(ptr, lib.ckls_ngram_memory_free)
        self._ids: dict[str, int] = {}
        self._next_id = 0
        self._lock = threading.Lock()
        self._lam = ffi.new("float *")
        self.rule = rule if isinstance(rule, MixRule) else RULES[rule]
        self.steps = 0       # mix calls
        self.spoke = 0       # mix calls that changed the logits

    # ---- the rule ---------------------------------------------------------------------------------------------
    @property
    def rule(self) -> MixRule:
        return self._rule

    @rule.setter
    def rule(self, r: MixRule) -> None:
        self._rule = r
        self._params = ffi.new("ckls_ngram_mix_params *", {
            "min_match": r.min_match, "full_match": r.full_match, "lambda_max": r.lambda_max,
            "count_prior": r.count_prior, "agreement": 1 if r.agreement else 0, "max_visits": r.max_visits})

    def weight(self, match_len: int, total: int, top_count: int) -> float:
        return float(lib.ckls_ngram_mix_weight(self._params, match_len, total, top_count))

    # ---- contents ---------------------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return int(lib.ckls_ngram_memory_capacity(self._ptr))

    @property
    def n_tokens(self) -> int:
        return int(lib.ckls_ngram_memory_tokens(self._ptr))

    @property
    def n_files(self) -> int:
        return int(lib.ckls_ngram_memory_files(self._ptr))

    def add(self, key: str, tokens: Sequence[int]) -> int:
        """Replaces key's tokens; the oldest keys are evicted when the capacity would be exceeded. Returns the
        number stored (a stream longer than the capacity keeps its head)."""
        arr = np.ascontiguousarray(tokens, dtype=np.int32)
        with self._lock:
            fid = self._ids.get(key)
            if fid is None:
                fid = self._ids[key] = self._next_id
                self._next_id += 1
            n = check(lib.ckls_ngram_memory_add(self._ptr, fid, ffi.from_buffer("int32_t[]", arr), len(arr)))
            if n == 0:
                del self._ids[key]
            return int(n)

    def remove(self, key: str) -> bool:
        with self._lock:
            fid = self._ids.pop(key, None)
            return fid is not None and check(lib.ckls_ngram_memory_remove(self._ptr, fid)) == 1

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def hide(self, key: str, hidden: bool = True) -> bool:
        """Hides key's tokens from predictions (or shows them again); a later add of key stays hidden. False
        when key is absent."""
        with self._lock:
            fid = self._ids.get(key)
            return fid is not None and check(lib.ckls_ngram_memory_hide(self._ptr, fid, 1 if hidden else 0)) == 1

    def clear(self) -> None:
        with self._lock:
            check(lib.ckls_ngram_memory_clear(self._ptr))
            self._ids.clear()

    # ---- queries ----------------------------------------------------------------------------------------------
    def predict(self, context: Sequence[int], max_visits: int | None = None) -> tuple[int, list[tuple[int, int]]]:
        """(longest match length, [(token, count)] by count) after context."""
        ctx = np.ascontiguousarray(context[-MAX_MATCH:], dtype=np.int32)
        ids = np.empty(MAX_VISITS, dtype=np.int32)
        counts = np.empty(MAX_VISITS, dtype=np.int32)
        ml = ffi.new("int32_t *")
        with self._lock:
            n = check(lib.ckls_ngram_memory_predict(
                self._ptr, ffi.from_buffer("int32_t[]", ctx), len(ctx),
                self.rule.max_visits if max_visits is None else max_visits, ffi.from_buffer("int32_t[]", ids),
                ffi.from_buffer("int32_t[]", counts), MAX_VISITS, ml))
        return int(ml[0]), [(int(ids[i]), int(counts[i])) for i in range(n)]

    def mix(self, logits: np.ndarray, context: np.ndarray) -> float:
        """Mixes the memory's prediction after `context` (int32, contiguous; its last MAX_MATCH tokens count) into
        float32 logits in place: one C call. Returns the weight the memory got (0: it had nothing to say)."""
        with self._lock:
            rc = lib.ckls_ngram_memory_mix(self._ptr, ffi.from_buffer("float[]", logits), len(logits),
                                           ffi.from_buffer("int32_t[]", context), len(context), self._params,
                                           self._lam)
        check(rc)
        self.steps += 1
        if rc > 0:
            self.spoke += 1
            return float(self._lam[0])
        return 0.0
