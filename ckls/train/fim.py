"""Documents → one packed token stream, with fill-in-the-middle rearrangement.

Each document becomes, with probability 1 − fim_rate, `text <|endoftext|>`; otherwise it is cut into
prefix/middle/suffix (two random character positions, or with probability `line_rate` two line starts) and laid
out as
  PSM: <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> middle <|endoftext|>
  SPM: <|fim_suffix|> suffix <|fim_prefix|> prefix <|fim_middle|> middle <|endoftext|>
(SPM as llama.cpp's `spm_infill` lays it out). The three parts are tokenized separately, as the server does.
The layout is drawn once per document (static FIM): the stream is built once and sampled by windows.
"""
from __future__ import annotations

import re

import numpy as np

from .specials import EOT, FIM_MID, FIM_PRE, FIM_SUF


def split_points(text: str, rng: np.random.Generator, line_aligned: bool) -> tuple[int, int]:
    n = len(text)
    if line_aligned:
        starts = [0] + [m.end() for m in re.finditer("\n", text) if m.end() < n] + [n]
        a, b = sorted(rng.choice(len(starts), 2, replace=True))
        return starts[a], starts[b]
    a, b = sorted(rng.integers(0, n + 1, 2))
    return int(a), int(b)


def layout(text: str, rng: np.random.Generator, fim_rate: float, spm_rate: float, line_rate: float):
    """List of pieces: str (to tokenize), (special,) or ("mid", str) for the middle the model must fill."""
    if rng.random() >= fim_rate or len(text) < 2:
        return [text, (EOT,)]
    a, b = split_points(text, rng, rng.random() < line_rate)
    pre, mid, suf = text[:a], text[a:b], text[b:]
    if rng.random() < spm_rate:
        return [(FIM_SUF,), suf, (FIM_PRE,), pre, (FIM_MID,), ("mid", mid), (EOT, "end")]
    return [(FIM_PRE,), pre, (FIM_SUF,), suf, (FIM_MID,), ("mid", mid), (EOT, "end")]


def encode_stream(texts, tok, seed: int = 0, fim_rate: float = 0.5, spm_rate: float = 0.5,
                  line_rate: float = 0.5, batch: int = 4096):
    """Encode an iterable of texts. Returns (uint16/uint32 tokens, per-text token counts, uint8 mask).

    The mask is 1 on the tokens of each FIM middle and the <|endoftext|> that closes it: what infilling predicts.

    `tok` must be a tokenizer from tokenizer.for_data (special-token strings in source stay text).
    """
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if tok.get_vocab_size() <= 65536 else np.uint32
    special = {s: tok.token_to_id(s) for s in (EOT, FIM_PRE, FIM_MID, FIM_SUF)}
    chunks, masks, counts = [], [], []
    buf: list = []

    def flush():
        strings = [p if isinstance(p, str) else p[1] for lay in buf for p in lay
                   if isinstance(p, str) or p[0] == "mid"]
        enc = iter(tok.encode_batch(strings, add_special_tokens=False))
        for lay in buf:
            n = 0
            for p in lay:
                if isinstance(p, str) or p[0] == "mid":
                    ids = np.asarray(next(enc).ids, dtype=dtype)
                else:
                    ids = np.asarray([special[p[0]]], dtype=dtype)
                chunks.append(ids)
                masks.append(np.full(len(ids), not isinstance(p, str) and len(p) == 2, dtype=np.uint8))
                n += len(ids)
            counts.append(n)
        buf.clear()

    for text in texts:
        buf.append(layout(text, rng, fim_rate, spm_rate, line_rate))
        if len(buf) >= batch:
            flush()
    if buf:
        flush()
    if not chunks:
        return np.zeros(0, dtype=dtype), counts, np.zeros(0, dtype=np.uint8)
    return np.concatenate(chunks), counts, np.concatenate(masks)
