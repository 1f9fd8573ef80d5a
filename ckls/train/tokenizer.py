"""Byte-level BPE tokenizer with the FIM special tokens, trained with HF `tokenizers`.

Pre-tokenization is Qwen2's regex (digits split one by one, which suits code) followed by GPT-2's byte-to-
unicode mapping, so the GGUF says `tokenizer.ggml.pre = "qwen2"` and any llama.cpp-compatible runtime,
ours included, reproduces the ids from the GGUF metadata alone.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from ckls.fim.tokens import EOT, FILE_SEP, FIM_MID, FIM_PAD, FIM_PRE, FIM_SUF, REPO, SPECIALS  # noqa: F401  (ids 0..6)

PRE_NAME = "qwen2"
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def empty() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def train(texts: Iterable[str], vocab_size: int = 16384, min_frequency: int = 2) -> Tokenizer:
    tok = empty()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    for i, s in enumerate(SPECIALS):
        if tok.token_to_id(s) != i:
            raise RuntimeError(f"special token {s} got id {tok.token_to_id(s)}, expected {i}")
    return tok


def load(path: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def for_data(tok: Tokenizer) -> Tokenizer:
    """Same tokenizer, but special-token strings inside source text stay plain text."""
    t = Tokenizer.from_str(tok.to_str())
    t.encode_special_tokens = True
    return t


def gguf_vocab(tok: Tokenizer) -> dict:
    """Everything the GGUF tokenizer keys need: tokens in byte-level text form, merges "a b", types, ids."""
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for t in spec.get("added_tokens", []):
        vocab[t["content"]] = t["id"]
    n = max(vocab.values()) + 1
    tokens = [""] * n
    for s, i in vocab.items():
        tokens[i] = s
    if any(t == "" for t in tokens):
        raise ValueError("vocabulary ids are not dense")
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    special = {t["content"] for t in spec.get("added_tokens", []) if t.get("special")}
    types = [3 if t in special else 1 for t in tokens]  # 3 = control, 1 = normal (gguf TokenType)
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    return {"tokens": tokens, "merges": merges, "types": types, "ids": ids, "pre": PRE_NAME}


def from_gguf_vocab(tokens: list[str], merges: list[str], types: list[int]) -> Tokenizer:
    """Rebuild a tokenizer from GGUF metadata alone (what a GGUF reader sees)."""
    vocab = {t: i for i, t in enumerate(tokens)}  # specials keep their ids when added below
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs))
    tok.pre_tokenizer = empty().pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True) for i, t in enumerate(tokens) if types[i] == 3])
    return tok
