"""A loaded model: GGUF weights (memory-mapped, handed to C without copies), the C forward with its KV cache,
prefix reuse between calls, sampling and cooperative cancellation."""
from __future__ import annotations

import os
import threading
from typing import Callable, Iterator, Sequence

import numpy as np

from ckls.native import NativeError, ffi, lib
from ckls.runtime.handle import Owner
from ckls.runtime.gguf_file import SUPPORTED_ARCHS, GGUFFile, ModelError, read_gguf, short

ARCH_IDS = {"llama": lib.CKLS_ARCH_LLAMA, "qwen2": lib.CKLS_ARCH_QWEN2}
ROPE_MODE = {"llama": lib.CKLS_ROPE_NORM, "qwen2": lib.CKLS_ROPE_NEOX}


class CancelFlag:
    """Set from any thread; the C forward polls it between layers and generation between tokens."""

    def __init__(self) -> None:
        self._cell = ffi.new("int32_t[1]")

    def set(self) -> None:
        self._cell[0] = 1

    def clear(self) -> None:
        self._cell[0] = 0

    @property
    def is_set(self) -> bool:
        return bool(self._cell[0])

    @property
    def ptr(self):
        return self._cell


class Cancelled(Exception):
    """The work was cancelled through its CancelFlag."""


def _int(md: dict, key: str, default: int | None = None, lo: int = 1, hi: int = 1 << 31) -> int:
    v = md.get(key, default)
    if v is None:
        raise ModelError(f"required metadata key {key!r} is missing")
    if isinstance(v, bool) or not isinstance(v, int):
        raise ModelError(f"metadata key {key!r} should be an integer, found {type(v).__name__} {short(v)}")
    if not lo <= v <= hi:
        raise ModelError(f"metadata key {key!r} = {v} is out of range [{lo}, {hi}]")
    return v


def _float(md: dict, key: str, default: float | None, lo: float, hi: float) -> float:
    v = md.get(key, default)
    if v is None:
        raise ModelError(f"required metadata key {key!r} is missing")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ModelError(f"metadata key {key!r} should be a number, found {short(v)}")
    if not lo < float(v) < hi:
        raise ModelError(f"metadata key {key!r} = {v} is out of range ({lo}, {hi})")
    return float(v)


def read_hparams(f: GGUFFile) -> dict:
    """Hyper-parameters from GGUF metadata, checked for consistency with each other."""
    arch = f.get("general.architecture")
    if arch is None:
        raise ModelError("metadata key 'general.architecture' is missing")
    if arch not in SUPPORTED_ARCHS:
        raise ModelError(f"architecture {short(arch)} is not supported (ckls runs: {', '.join(SUPPORTED_ARCHS)})")
    if f.get("general.type", "model") != "model":
        raise ModelError(f"this file is a {short(f.get('general.type'))}, not a model (an adapter needs its base model)")
    md = f.metadata
    n_embd = _int(md, f"{arch}.embedding_length", hi=65536)
    n_head = _int(md, f"{arch}.attention.head_count", hi=4096)
    n_head_kv = _int(md, f"{arch}.attention.head_count_kv", n_head, hi=4096)
    if n_embd % n_head or n_head % n_head_kv:
        raise ModelError(f"head counts ({n_head} heads, {n_head_kv} KV heads) do not divide n_embd {n_embd}")
    head_dim = n_embd // n_head
    emb = f.tensors.get("token_embd.weight")
    if emb is None:
        raise ModelError("tensor 'token_embd.weight' is missing")
    n_vocab = emb.ne[1] if len(emb.ne) > 1 else 0
    tokens = md.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list) and tokens and len(tokens) != n_vocab:
        # llama.cpp accepts a padded embedding; more tokens than rows would index outside it
        if len(tokens) > n_vocab:
            raise ModelError(f"tokenizer has {len(tokens)} tokens but token_embd.weight only {n_vocab} rows")
    hp = {
        "arch": arch,
        "n_vocab": n_vocab,
        "n_embd": n_embd,
        "n_layer": _int(md, f"{arch}.block_count", hi=1024),
        "n_ff": _int(md, f"{arch}.feed_forward_length", hi=1 << 20),
        "n_head": n_head,
        "n_head_kv": n_head_kv,
        "head_dim": head_dim,
        "n_rot": _int(md, f"{arch}.rope.dimension_count", head_dim, hi=head_dim),
        "n_ctx_train": _int(md, f"{arch}.context_length", 2048, hi=1 << 24),
        "rms_eps": _float(md, f"{arch}.attention.layer_norm_rms_epsilon", 1e-5, 0.0, 1.0),
        "rope_base": _float(md, f"{arch}.rope.freq_base", 10000.0, 0.0, 1e12),
    }
    if hp["n_rot"] % 2:
        raise ModelError(f"rope dimension {hp['n_rot']} must be even")
    return hp


class Model(Owner):
    """A GGUF llama/qwen2 model ready to evaluate. Not thread-safe: one evaluation at a time (the completion
    scheduler serialises); `CancelFlag.set()` may be called from any thread."""

    _free = staticmethod(lib.ckls_model_free)

    def __init__(self, path: str | os.PathLike, n_ctx: int = 2048, n_threads: int | None = None,
                 load_tokenizer: bool = True, file: GGUFFile | None = None):
        self.path = os.fspath(path)
        self.file = file if file is not None else read_gguf(self.path)  # another Model's: one mapping, shared
        self.hparams = read_hparams(self.file)
        self.arch = self.hparams["arch"]
        self.n_vocab = self.hparams["n_vocab"]
        self.n_threads = n_threads or min(os.cpu_count() or 1, 8)
        self.n_ctx = int(n_ctx)
        self._keep: list = []  # cffi buffers that must outlive the C model
        self._ptr = self._create()
        self._cached: list[int] = []  # tokens whose K/V are in the cache, positions 0..len-1
        self._lock = threading.Lock()
        self.tokenizer = self._load_tokenizer() if load_tokenizer else None

    # ---- construction ---------------------------------------------------------------------------------------
    def _tensor(self, name: str, optional: bool = False):
        t = ffi.new("ckls_tensor *")
        info = self.file.tensors.get(name)
        if info is None:
            if not optional:
                raise ModelError(f"tensor {name!r} is missing")
            return t
        if len(info.ne) > 2 and any(x != 1 for x in info.ne[2:]):
            raise ModelError(f"tensor {name!r} has shape {list(info.ne)}; ckls expects at most 2 dimensions")
        buf = ffi.from_buffer("char[]", info.data, require_writable=False)
        self._keep.append(buf)
        t.data = buf
        t.type = info.type
        t.ne0 = info.ne[0]
        t.ne1 = info.ne[1] if len(info.ne) > 1 else 1
        t.nbytes = info.nbytes
        return t

    def _create(self):
        hp = self.hparams
        known = {"token_embd.weight", "output_norm.weight", "output.weight"}
        c_hp = ffi.new("ckls_hparams *")
        c_hp.arch = ARCH_IDS[self.arch]
        for k in ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_rot"):
            setattr(c_hp, k, hp[k])
        c_hp.rms_eps = hp["rms_eps"]
        c_hp.rope_base = hp["rope_base"]
        c_hp.rope_mode = ROPE_MODE[self.arch]
        layers = ffi.new("ckls_layer[]", hp["n_layer"])
        fields = {"attn_norm": "attn_norm.weight", "wq": "attn_q.weight", "wk": "attn_k.weight",
                  "wv": "attn_v.weight", "bq": "attn_q.bias", "bk": "attn_k.bias", "bv": "attn_v.bias",
                  "wo": "attn_output.weight", "ffn_norm": "ffn_norm.weight", "w_gate": "ffn_gate.weight",
                  "w_up": "ffn_up.weight", "w_down": "ffn_down.weight"}
        for i in range(hp["n_layer"]):
            for field, suffix in fields.items():
                name = f"blk.{i}.{suffix}"
                known.add(name)
                setattr(layers[i], field, self._tensor(name, optional=suffix.endswith(".bias"))[0])
        unknown = sorted(set(self.file.tensors) - known - {"rope_freqs.weight"})
        if unknown:
            raise ModelError(f"unexpected tensors for {self.arch}: {', '.join(short(u) for u in unknown[:5])}"
                             f"{' ...' if len(unknown) > 5 else ''}")
        tok = self._tensor("token_embd.weight")
        onorm = self._tensor("output_norm.weight")
        out = self._tensor("output.weight", optional=True)
        self._keep += [c_hp, layers, tok, onorm, out]
        ptr = lib.ckls_model_create(c_hp, tok, onorm, out, layers, self.n_ctx, self.n_threads)
        if ptr == ffi.NULL:
            from ckls.native import last_error

            raise ModelError(f"{self.path}: {last_error()}")
        return ptr

    def _load_tokenizer(self):
        from ckls.runtime.tokenizer import Tokenizer

        try:
            tok = Tokenizer.from_gguf_fields(self.file.metadata)
        except (ValueError, OverflowError) as exc:
            raise ModelError(f"tokenizer metadata: {exc}") from None
        if tok.n_vocab > self.n_vocab:
            raise ModelError(f"tokenizer has {tok.n_vocab} tokens, the embedding only {self.n_vocab}")
        return tok

    @property
    def n_sample(self) -> int:
        """Ids generation may pick: a padded embedding (more rows than tokens, which llama.cpp accepts) has rows
        past the vocabulary whose ids have no text; they are never sampled."""
        return self.tokenizer.n_vocab if self.tokenizer is not None else self.n_vocab

    # ---- evaluation -------------------------------------------------------------------------------------------
    def close(self) -> None:
        super().close()
        self._keep = []  # the buffers the C model read from

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_adapter(self, adapter) -> None:
        """Applies a LoRA adapter (ckls.runtime.lora.LoraAdapter; None removes it) to every later evaluation,
        without reloading the weights. The cached prefix is dropped: its keys/values came from other weights."""
        from ckls.native import check

        check(lib.ckls_model_set_lora(self._ptr, adapter.ptr if adapter is not None else ffi.NULL))
        self.adapter = adapter  # keeps it alive while the C model points at it
        self.forget()

    @property
    def cached_tokens(self) -> list[int]:
        return list(self._cached)

    def truncate(self, n_keep: int) -> None:
        """Drops the cached keys/values of positions n_keep.. (llama.cpp's llama_memory_seq_rm(mem, 0, n_keep, -1));
        the next eval starts at pos0 <= n_keep."""
        if n_keep < 0:
            raise ValueError(f"n_keep {n_keep} is negative")
        self._cached = self._cached[:n_keep]

    def forget(self) -> None:
        """Drops the whole cache (e.g. after the weights it came from changed): the next eval starts at pos0 0."""
        self.truncate(0)

    def eval(self, tokens: Sequence[int], pos0: int = 0, logits_all: bool = False,
             cancel: CancelFlag | None = None, logits: bool = True) -> np.ndarray | None:
        """Evaluates tokens at positions pos0.. (the cache must hold the prefix). Returns float32 logits for the
        last token, or [n, n_vocab] when logits_all; None when not `logits` (only the cache is filled)."""
        toks = self._positions(tokens, pos0)
        n = len(toks)
        out = np.empty((n if logits_all else 1, self.n_vocab), dtype=np.float32) if logits else None
        self._done(lib.ckls_model_eval(self._ptr, ffi.from_buffer("int32_t[]", toks), n, pos0,
                                       ffi.from_buffer("float[]", out) if logits else ffi.NULL,
                                       1 if logits_all and logits else 0, cancel.ptr if cancel else ffi.NULL),
                   toks, pos0)
        if out is None:
            return None
        return out if logits_all else out[0]

    def eval_hidden(self, tokens: Sequence[int], pos0: int = 0, cancel: CancelFlag | None = None) -> np.ndarray:
        """Evaluates tokens at positions pos0.. as eval does and returns every token's hidden state after the final
        norm, float32 [n, n_embd] (no logits)."""
        toks = self._positions(tokens, pos0)
        out = np.empty((len(toks), self.hparams["n_embd"]), dtype=np.float32)
        self._done(lib.ckls_model_eval_hidden(self._ptr, ffi.from_buffer("int32_t[]", toks), len(toks), pos0,
                                              ffi.from_buffer("float[]", out), cancel.ptr if cancel else ffi.NULL),
                   toks, pos0)
        return out

    def _positions(self, tokens: Sequence[int], pos0: int) -> np.ndarray:
        """tokens as int32, checked to fit at pos0 after the cached prefix."""
        if self._ptr is None:
            raise RuntimeError("model is closed")
        n = len(tokens)
        if n == 0:
            raise ValueError("eval needs at least one token")
        if pos0 < 0 or pos0 > len(self._cached):
            raise ValueError(f"pos0 {pos0} is beyond the {len(self._cached)} cached positions")
        if pos0 + n > self.n_ctx:
            raise ValueError(f"{pos0 + n} positions exceed the context of {self.n_ctx}")
        return np.ascontiguousarray(tokens, dtype=np.int32)

    def _done(self, rc: int, toks: np.ndarray, pos0: int) -> None:
        """The cache's bookkeeping after an eval call; its error raised."""
        if rc < 0:
            self._cached = self._cached[:pos0]  # K/V past pos0 may be partly overwritten
            if rc == lib.CKLS_ECANCELLED:
                raise Cancelled()
            from ckls.native import last_error

            raise NativeError(rc, last_error())
        self._cached = self._cached[:pos0] + [int(t) for t in toks]

    def last_hidden(self) -> np.ndarray:
        """The last evaluated token's hidden state after the final norm, float32 [n_embd]."""
        out = np.empty(self.hparams["n_embd"], dtype=np.float32)
        lib.ckls_model_last_hidden(self._ptr, ffi.from_buffer("float[]", out))
        return out

    def logits_for(self, tokens: Sequence[int], cancel: CancelFlag | None = None) -> np.ndarray:
        """Logits after `tokens`, evaluating only what differs from the cached prefix (at least one token)."""
        tokens = list(tokens)
        if not tokens:
            raise ValueError("need at least one token")
        common = min(_common(tokens, self._cached), len(tokens) - 1)  # re-evaluate the last token to get its logits
        return self.eval(tokens[common:], pos0=common, cancel=cancel)

    def generate(self, tokens: Sequence[int], max_tokens: int, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, min_p: float = 0.0, repeat_penalty: float = 1.0, seed: int = 0,
                 stop_ids: Sequence[int] | None = None, cancel: CancelFlag | None = None,
                 deadline: Callable[[], bool] | None = None,
                 constrain: Callable[[np.ndarray], None] | None = None, memory=None,
                 memory_context: Sequence[int] = (), draft: int = 0, draft_base: Sequence[int] | None = None,
                 draft_stop: np.ndarray | None = None, draft_memory: bool = False,
                 stats: dict | None = None) -> Iterator[int]:
        """Yields generated token ids, one C call per step. Stops at a stop id (EOS by default), max_tokens, a full
        context, a raised cancel flag (raises Cancelled) or when deadline() turns true (returns quietly).
        constrain(logits), when given, may edit each step's logits in place before sampling (e.g. mask tokens).
        memory (a ckls.runtime.ngram_memory.NgramMemory), when given, is mixed into each step's logits after
        constrain, with memory_context (the code right before the cursor, as token ids: not the FIM prompt, whose
        end is a special token) followed by the tokens generated so far as its context. A memory with
        `needs_hidden` (ckls.runtime.knn_memory.HiddenMemory) gets each step's hidden state instead, and turns
        speculation off (a drafted row's hidden state is not kept).

        draft > 0 speculates (prompt lookup, ckls.runtime.draft): at each step, up to `draft` tokens that followed
        an earlier occurrence of the text's last tokens are evaluated with the step's token in one forward pass
        that returns every position's logits. The text is draft_base (default: the prompt; a FIM prompt's caller
        passes it in reading order, the prefix last, so that the generated tokens continue it) and the tokens
        generated so far; a draft ends after its first token marked in draft_stop (a bool array over the ids,
        e.g. the tokens holding a line break when only one line is wanted). With draft_memory, where the text has
        no match, the repository memory (`memory`, when given) may draft instead (draft.memory_draft).
        The step after a drafted token takes that position's logits instead of a forward pass of its own, for as
        long as the chosen token equals the draft; the first that differs drops the rest (the cache is cut back
        to the accepted tokens). Every step still samples, constrains and mixes as without a draft, in the same
        order and with the caller's state (constrain's, the rng) advanced by the tokens yielded so far, so the
        output is the same as long as a position's logits are: the native forward computes each token's row with
        the same arithmetic whatever the batch (tests/test_speculative.py checks it; Engine checks it on the
        loaded model before it speculates).
        stats, when given, gets counts: steps (forward passes after the prompt), drafted and accepted tokens
        (memory_drafted: those the memory drafted)."""
        params = ffi.new("ckls_sampler_params *", {"temperature": temperature, "top_k": top_k, "top_p": top_p,
                                                   "min_p": min_p, "repeat_penalty": repeat_penalty})
        rng = ffi.new("uint64_t *", (seed * 0x9E3779B97F4A7C15 + 1) & 0xFFFFFFFFFFFFFFFF)
        if stop_ids is None:
            stop_ids = [t for t in (getattr(self.tokenizer, "eos_id", None),) if t is not None]
        stops = set(stop_ids)
        seq = list(tokens)
        if not seq:
            raise ValueError("need at least one token")
        st = stats if stats is not None else {}
        for k in ("steps", "drafted", "accepted"):
            st.setdefault(k, 0)
        needs_hidden = getattr(memory, "needs_hidden", False)  # a hidden-state memory: each step's own row
        if needs_hidden:
            draft = 0  # (drafted rows' hidden states are not kept)
        if memory is not None:
            from ckls.runtime.ngram_memory import MAX_MATCH

            mem_ctx = [int(t) for t in list(memory_context)[-MAX_MATCH:]]
        lookup = None
        if draft > 0:
            from ckls.runtime.draft import PromptLookup, memory_draft

            lookup = PromptLookup(seq if draft_base is None else draft_base, self.n_ctx)

        def guess_after(n_done: int) -> list[int]:
            if lookup is None:
                return []
            k = min(draft, max_tokens - n_done - 1, self.n_ctx - len(seq))
            g = lookup.draft(k)
            if not g and draft_memory and memory is not None and k > 0:
                g = memory_draft(memory, mem_ctx[-MAX_MATCH:], k)
                st["memory_drafted"] = st.get("memory_drafted", 0) + len(g)
            if draft_stop is not None:
                for j, t in enumerate(g):
                    if draft_stop[t]:
                        return g[:j + 1]
            return g

        ahead: list[tuple[int, np.ndarray]] = []  # drafted tokens not yet reached, with the logits after each
        guess = guess_after(0)
        if guess:  # the prompt's last token with a draft: the uncached rest first, without logits
            have = min(len(seq) - 1, _common(seq, self._cached))
            if have < len(seq) - 1:
                self.eval(seq[have:-1], pos0=have, cancel=cancel, logits=False)
            rows = self.eval(seq[-1:] + guess, pos0=len(seq) - 1, logits_all=True, cancel=cancel)
            st["drafted"] += len(guess)
            logits = rows[0]
            ahead = list(zip(guess, rows[1:]))
        else:
            logits = self.logits_for(seq, cancel=cancel)
        n_out = 0
        try:
            while n_out < max_tokens:
                if cancel is not None and cancel.is_set:
                    raise Cancelled()
                if self.n_sample < self.n_vocab:
                    logits[self.n_sample:] = -np.inf
                if constrain is not None:
                    constrain(logits)
                if needs_hidden:
                    memory.mix(logits, hidden=self.last_hidden())
                elif memory is not None and len(mem_ctx) >= 2:
                    memory.mix(logits, np.array(mem_ctx[-MAX_MATCH:], dtype=np.int32))
                recent = np.ascontiguousarray(seq[-64:], dtype=np.int32)
                tok = lib.ckls_sample(ffi.from_buffer("float[]", logits), self.n_vocab, params, rng,
                                      ffi.from_buffer("int32_t[]", recent), len(recent))
                if tok in stops:
                    return
                yield tok
                n_out += 1
                seq.append(tok)
                if memory is not None:
                    mem_ctx.append(tok)
                if lookup is not None:
                    lookup.append(tok)
                if len(seq) >= self.n_ctx or (deadline is not None and deadline()):
                    return
                if n_out >= max_tokens:
                    return
                if ahead and ahead[0][0] == tok:  # the draft guessed this token: its position is evaluated already
                    logits = ahead.pop(0)[1]
                    st["accepted"] += 1
                    continue
                if ahead:  # guessed wrong: the drafted positions from here on are dropped
                    ahead = []
                    self.truncate(len(seq) - 1)
                guess = guess_after(n_out)
                st["steps"] += 1
                if guess:
                    rows = self.eval([tok] + guess, pos0=len(seq) - 1, logits_all=True, cancel=cancel)
                    st["drafted"] += len(guess)
                    logits = rows[0]
                    ahead = list(zip(guess, rows[1:]))
                else:
                    logits = self.eval([tok], pos0=len(seq) - 1, cancel=cancel)
        finally:
            if ahead:  # drafted positions not taken leave the cache: it holds the generated tokens (bar the last)
                keep = len(seq) if self._cached[len(seq) - 1] == seq[-1] else len(seq) - 1
                self.truncate(keep)


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of a and b."""
    n, limit = 0, min(len(a), len(b))
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def load_model(path: str | os.PathLike, n_ctx: int = 2048, n_threads: int | None = None) -> Model:
    """Loads a llama/qwen2 GGUF model; raises ModelError with a clear message when the file cannot be used."""
    return Model(path, n_ctx=n_ctx, n_threads=n_threads)
