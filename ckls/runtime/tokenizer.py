"""Byte-level BPE tokenizer of GGUF `gpt2`-type vocabularies: a thin wrapper over the C tokenizer.

Build one from a `gguf.GGUFReader` (`Tokenizer.from_reader`), from plain GGUF field values
(`Tokenizer.from_gguf_fields`), or from lists (`Tokenizer(tokens, merges, ...)`). All encoding work runs in C.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ckls.native import NativeError, ffi, lib
from ckls.runtime.gguf_file import short

# tokenizer.ggml.pre values -> the pre-tokenizer regex the C side implements. "default" (also what a file
# without the key means) is read as GPT-2's regex, as HF's ByteLevel applies it; llama.cpp instead runs a
# punctuation/digit split chain for "default", so such files can tokenize differently there.
PRE_TYPES = {
    "default": lib.CKLS_PRE_GPT2,
    "gpt-2": lib.CKLS_PRE_GPT2,
    "gpt2": lib.CKLS_PRE_GPT2,
    "qwen2": lib.CKLS_PRE_QWEN2,
    "llama-bpe": lib.CKLS_PRE_LLAMA3,
    "llama3": lib.CKLS_PRE_LLAMA3,
}
MODEL_TYPES = ("gpt2",)

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6

# FIM roles -> GGUF key suffix and the token texts code models use when the file names no id.
FIM_ROLES = {
    "fim_pre_id": ("fim_pre_token_id", ("<|fim_prefix|>", "<fim_prefix>", "<fim-prefix>", "<PRE>",
                                        "<｜fim▁begin｜>")),
    "fim_suf_id": ("fim_suf_token_id", ("<|fim_suffix|>", "<fim_suffix>", "<fim-suffix>", "<SUF>",
                                        "<｜fim▁hole｜>")),
    "fim_mid_id": ("fim_mid_token_id", ("<|fim_middle|>", "<fim_middle>", "<fim-middle>", "<MID>",
                                        "<｜fim▁end｜>")),
    "fim_pad_id": ("fim_pad_token_id", ("<|fim_pad|>", "<fim_pad>", "<fim-pad>", "<PAD>")),
    "fim_rep_id": ("fim_rep_token_id", ("<|repo_name|>", "<|fim_repo|>", "<fim-repo>", "<reponame>", "<REPO>")),
    "fim_sep_id": ("fim_sep_token_id", ("<|file_sep|>", "<file_sep>", "<filename>")),
}
SPECIAL_KEYS = {"bos_id": "bos_token_id", "eos_id": "eos_token_id", "pad_id": "padding_token_id"}


def _as_bytes(s: str | bytes) -> bytes:
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def _packed(items: Sequence[bytes]):
    """Concatenated bytes plus n+1 offsets, as cffi buffers (kept alive by the caller)."""
    offsets = [0, *itertools.accumulate(len(b) for b in items)]
    return ffi.from_buffer(b"".join(items) + b"\0"), ffi.new("int64_t[]", offsets)


class Tokenizer:
    """Byte-level BPE over the C core: encode/decode with GGUF `gpt2` vocabularies and their special tokens."""

    def __init__(self, tokens: Sequence[str | bytes], merges: Sequence[str | bytes], pre: str = "gpt-2",
                 token_types: Sequence[int] | None = None, *, specials: Mapping[str, int | None] | None = None):
        if pre not in PRE_TYPES:
            raise ValueError(f"unknown pre-tokenizer {short(pre)}; supported: {', '.join(sorted(PRE_TYPES))}")
        if not tokens:
            raise ValueError("tokenizer has no tokens")
        if token_types is not None and len(token_types) != len(tokens):
            raise ValueError(f"token_type has {len(token_types)} entries for {len(tokens)} tokens")
        self.pre = pre
        self.n_vocab = len(tokens)
        self._texts = [_as_bytes(t) for t in tokens]
        self.token_types = [int(x) for x in token_types] if token_types is not None else \
            [TOKEN_NORMAL] * self.n_vocab
        tok_data, tok_off = _packed(self._texts)
        types = ffi.new("int32_t[]", self.token_types)
        merge_items = [_as_bytes(m) for m in merges]
        merge_data, merge_off = _packed(merge_items)
        ptr = lib.ckls_tokenizer_create(self.n_vocab, ffi.cast("const char *", tok_data), tok_off, types,
                                        len(merge_items), ffi.cast("const char *", merge_data), merge_off,
                                        PRE_TYPES[pre])
        if ptr == ffi.NULL:
            raise ValueError(ffi.string(lib.ckls_last_error()).decode("utf-8", "replace"))
        self._t = ffi.gc(ptr, lib.ckls_tokenizer_free)
        self._set_specials(dict(specials or {}))

    # ---- construction from GGUF ----------------------------------------------------------------------------
    @classmethod
    def from_gguf_fields(cls, fields: Mapping[str, Any]) -> "Tokenizer":
        """From GGUF key -> value (e.g. {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": [...]})."""
        model = fields.get("tokenizer.ggml.model")
        if model is None:
            raise ValueError("GGUF has no tokenizer.ggml.model")
        if model not in MODEL_TYPES:
            raise ValueError(f"unsupported tokenizer model {short(model)}; supported: {', '.join(MODEL_TYPES)}")
        tokens = fields.get("tokenizer.ggml.tokens")
        if not tokens:
            raise ValueError("GGUF has no tokenizer.ggml.tokens")
        merges = fields.get("tokenizer.ggml.merges")
        if merges is None:
            raise ValueError("GGUF has no tokenizer.ggml.merges (required for model 'gpt2')")
        pre = fields.get("tokenizer.ggml.pre", "default")
        specials: dict[str, int | None] = {}
        for attr, key in SPECIAL_KEYS.items():
            specials[attr] = fields.get("tokenizer.ggml." + key)
        for attr, (key, _) in FIM_ROLES.items():
            specials[attr] = fields.get("tokenizer.ggml." + key)
        return cls(tokens, merges, pre, fields.get("tokenizer.ggml.token_type"), specials=specials)

    @classmethod
    def from_reader(cls, reader: Any) -> "Tokenizer":
        """From an open `gguf.GGUFReader` (strings are taken as raw bytes, not re-decoded)."""
        import gguf

        fields: dict[str, Any] = {}
        for name, field in reader.fields.items():
            if not name.startswith("tokenizer.ggml."):
                continue
            types = field.types
            if not types:
                continue
            if types[0] == gguf.GGUFValueType.ARRAY:
                if len(types) > 1 and types[1] == gguf.GGUFValueType.STRING:
                    fields[name] = [bytes(field.parts[i]) for i in field.data]
                else:
                    fields[name] = [int(field.parts[i][0]) for i in field.data]
            elif types[0] == gguf.GGUFValueType.STRING:
                fields[name] = bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
            else:
                fields[name] = field.parts[field.data[0]][0].item()
        return cls.from_gguf_fields(fields)

    def _set_specials(self, specials: dict[str, int | None]) -> None:
        for attr in (*SPECIAL_KEYS, *FIM_ROLES):
            value = specials.get(attr)
            if value is not None:
                value = int(value)
                if not 0 <= value < self.n_vocab:
                    raise ValueError(f"{attr} {value} is outside the vocabulary of {self.n_vocab} tokens")
            setattr(self, attr, value)
        by_text = {t: i for i, t in enumerate(self._texts)
                   if self.token_types[i] in (TOKEN_CONTROL, TOKEN_USER_DEFINED)}
        for attr, (_, texts) in FIM_ROLES.items():
            if getattr(self, attr) is None:
                setattr(self, attr, next((by_text[t.encode()] for t in texts if t.encode() in by_text), None))

    # ---- encode / decode ---------------------------------------------------------------------------------
    def encode(self, text: str | bytes, parse_special: bool = False) -> list[int]:
        """Token ids of text; with parse_special, control-token text (e.g. <|fim_prefix|>) becomes that token."""
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
        cap = len(data) + 1  # every token covers at least one byte
        ids = ffi.new("int32_t[]", cap)
        n = lib.ckls_tokenize(self._t, data, len(data), int(parse_special), ids, cap)
        if n < 0:
            raise NativeError(n, ffi.string(lib.ckls_last_error()).decode("utf-8", "replace"))
        return ffi.unpack(ids, n)

    def pretokenize(self, text: str | bytes, parse_special: bool = False) -> list[bytes]:
        """The pieces encode() merges, as bytes (special tokens are pieces of their own); for tests and tools."""
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
        ends = ffi.new("int64_t[]", len(data) + 1)
        n = lib.ckls_pretokenize(self._t, data, len(data), int(parse_special), ends, len(data) + 1)
        if n < 0:
            raise NativeError(n, ffi.string(lib.ckls_last_error()).decode("utf-8", "replace"))
        bounds = [0, *ffi.unpack(ends, n)]
        return [data[a:b] for a, b in zip(bounds, bounds[1:])]

    def decode_bytes(self, ids: Iterable[int], skip_special: bool = False) -> bytes:
        ids = list(ids)
        arr = ffi.new("int32_t[]", ids)
        cap = 16 * len(ids) + 64
        for _ in range(2):
            out = ffi.new("char[]", cap)
            n = lib.ckls_detokenize(self._t, arr, len(ids), int(skip_special), out, cap)
            if n < 0:
                raise ValueError(ffi.string(lib.ckls_last_error()).decode("utf-8", "replace"))
            if n <= cap:
                return ffi.unpack(out, n)
            cap = n
        raise AssertionError("unreachable")

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """Text of ids (UTF-8, invalid sequences replaced); skip_special leaves control tokens out."""
        return self.decode_bytes(ids, skip_special).decode("utf-8", "replace")

    def token_bytes(self, id: int) -> bytes:
        """Raw bytes of one token (byte-level form undone)."""
        buf = ffi.new("char[]", 256)
        n = lib.ckls_token_to_bytes(self._t, int(id), buf, 256)
        if n < 0:
            raise ValueError(ffi.string(lib.ckls_last_error()).decode("utf-8", "replace"))
        if n > 256:
            buf = ffi.new("char[]", n)
            lib.ckls_token_to_bytes(self._t, int(id), buf, n)
        return ffi.unpack(buf, n)

    def token_text(self, id: int) -> bytes:
        """The token as stored in the vocabulary (byte-level text form for normal tokens)."""
        return self._texts[id]

    def is_control(self, id: int) -> bool:
        return self.token_types[id] == TOKEN_CONTROL

    def __len__(self) -> int:
        return self.n_vocab

    def __repr__(self) -> str:
        return f"Tokenizer(n_vocab={self.n_vocab}, pre={self.pre!r})"


def unicode_version() -> str:
    """Unicode version of the C pre-tokenizer's character classes."""
    return ffi.string(lib.ckls_tokenizer_unicode_version()).decode()
