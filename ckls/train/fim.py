"""Documents → one packed token stream (HF tokenizers, batched: the factory's encoder of ckls.fim layouts).

Each document becomes, with probability 1 − fim_rate, `text <|endoftext|>`; otherwise it is cut into
prefix/middle/suffix (two random character positions, or with probability `line_rate` two line starts) and laid
out as
  PSM: <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> middle <|endoftext|>
  SPM: <|fim_suffix|> suffix <|fim_prefix|> prefix <|fim_middle|> middle <|endoftext|>
(SPM as llama.cpp's `spm_infill` lays it out). The three parts are tokenized separately, as the server does.
The layout is drawn once per document (static FIM): the stream is built once and sampled by windows.
"""
from __future__ import annotations

import numpy as np

from ckls.fim.fill import layout
from ckls.fim.layout import heal_split as heal
from ckls.fim.tokens import EOT, FILE_SEP, FIM_MID, FIM_PRE, FIM_SUF


def encode_stream(texts, tok, seed: int = 0, fim_rate: float = 0.5, spm_rate: float = 0.5,
                  line_rate: float = 0.5, batch: int = 4096):
    """Encode an iterable of texts. Returns (uint16/uint32 tokens, per-text token counts, uint8 mask).

    The mask is 1 on the tokens of each FIM middle and the <|endoftext|> that closes it: what infilling predicts.

    `tok` must be a tokenizer from tokenizer.for_data (special-token strings in source stay text).
    """
    rng = np.random.default_rng(seed)
    stream, counts, mask, _ = encode_layouts((layout(t, rng, fim_rate, spm_rate, line_rate) for t in texts), tok,
                                             batch)
    return stream, counts, mask


def hf_pretokenize(tok):
    """An HF tokenizer's pre-token pieces as bytes (what fim/layout.heal_split reads), None without a
    pre-tokenizer; its offsets are in characters of the text."""
    pre = tok.pre_tokenizer
    if pre is None:
        return None
    return lambda text: [text[a:b].encode("utf-8") for _, (a, b) in pre.pre_tokenize_str(text)]


def encode_layouts(layouts, tok, batch: int = 4096):
    """Encode an iterable of layouts (lists of pieces). Returns (tokens, per-layout token counts, mask, starts:
    the offset where each layout begins).

    Pieces: str (text), (special,), ("mid", text) for the middle the model fills (masked), (EOT, "end") its
    closing token (masked), and ("pre", text) for a prefix the server heals: its last word is left out and
    its text put at the head of the next middle, as the server's prompt leaves it out and the model re-spells
    it (completion/heal.py, fim/layout.heal_split). Healing is skipped where that text is not whole UTF-8.
    """
    dtype = np.uint16 if tok.get_vocab_size() <= 65536 else np.uint32
    pretokenize = hf_pretokenize(tok)
    special = {s: tok.token_to_id(s) for s in (EOT, FIM_PRE, FIM_MID, FIM_SUF, FILE_SEP)}
    chunks, masks, counts = [], [], []
    buf: list = []

    def flush():
        enc = iter(tok.encode_batch([p if isinstance(p, str) else p[1] for lay in buf for p in lay
                                     if isinstance(p, str) or p[0] == "pre"], add_special_tokens=False))
        parts, mids = [], []
        for lay in buf:
            row, carry = [], ""
            for p in lay:
                if isinstance(p, str):
                    row.append((next(enc).ids, False))
                elif p[0] == "pre":
                    ids, carry = heal(next(enc).ids, p[1], lambda t: tok.decode(t, skip_special_tokens=False),
                                      pretokenize)
                    row.append((ids, False))
                elif p[0] == "mid":
                    mids.append(carry + p[1])
                    carry = ""
                    row.append(None)
                else:
                    row.append(([special[p[0]]], len(p) == 2))
            parts.append(row)
        menc = iter(tok.encode_batch(mids, add_special_tokens=False)) if mids else iter(())
        for row in parts:
            n = 0
            for part in row:
                ids, masked = (next(menc).ids, True) if part is None else part
                chunks.append(np.asarray(ids, dtype=dtype))
                masks.append(np.full(len(ids), masked, dtype=np.uint8))
                n += len(ids)
            counts.append(n)
        buf.clear()

    for lay in layouts:
        buf.append(lay)
        if len(buf) >= batch:
            flush()
    if buf:
        flush()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if counts else np.zeros(0, np.int64)
    if not chunks:
        return np.zeros(0, dtype=dtype), counts, np.zeros(0, dtype=np.uint8), starts
    return np.concatenate(chunks), counts, np.concatenate(masks), starts
