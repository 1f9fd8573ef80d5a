"""The one prompt layout: what serving, training, tuning and eval all render from.

A layout is a list of pieces:
  str                 text, tokenized on its own
  (SPECIAL,)          a special token (tokens.py texts)
  ("pre", text)       the prefix before the cursor: its last word (pre-token; its last token where the word is long
                      or no pre-tokenizer is given) is left out and re-spelled by the model as the start of what
                      it generates (token healing: completion/heal.py); the healed text is carried to the head of
                      the middle that follows, when there is one
  ("mid", text)       the middle the model is trained to fill (masked for the loss)
  (EOT, "end")        the token that closes a middle (masked too)

The layout of a completion at a cursor (SPM is the default; PSM swaps the prefix and suffix parts):
  head:   (<|file_sep|> path \n text)*  <|file_sep|> path \n      — context from other places, then this file's name
  SPM:    head <|fim_suffix|> suffix <|fim_prefix|> prefix <|fim_middle|> [middle <|endoftext|>]
  PSM:    head <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> [middle <|endoftext|>]
A model without a file separator gets its head as plain text, one entry per line block; a model without FIM
tokens gets head + prefix (plain continuation). Parts are tokenized separately, as the server does.
"""
from __future__ import annotations

from typing import NamedTuple

from .tokens import EOT, FILE_SEP, FIM_MID, FIM_PRE, FIM_SUF

HEAL_TOKENS = 4   # the most tokens healing gives back (a longer last word keeps all but its last token)
HEAL_SCAN = 256   # characters of the prefix's end searched for its last pre-token

__all__ = ["head", "cursor", "example", "heal_split", "render", "FILE_SEP"]


def head(entries: list[tuple[str, str]], path: str, has_sep: bool = True) -> list:
    """The pieces before the FIM block: each (path, text) entry, then the current file's name. Empty entries give
    an empty head (no lone file name)."""
    if not entries:
        return []
    if not has_sep:
        return [f"{text}\n" for _, text in entries]
    out: list = []
    for where, text in entries:
        out += [(FILE_SEP,), f"{where}\n{text}"]
    return out + [(FILE_SEP,), f"{path}\n"]


def cursor(head_pieces: list, prefix: str, suffix: str, order: str = "spm", has_fim: bool = True) -> list:
    """The prompt at a cursor: head, then the FIM block up to <|fim_middle|> (or head + prefix without FIM)."""
    if not has_fim:
        return head_pieces + [("pre", prefix)]
    if order == "psm":
        return head_pieces + [(FIM_PRE,), ("pre", prefix), (FIM_SUF,), suffix, (FIM_MID,)]
    return head_pieces + [(FIM_SUF,), suffix, (FIM_PRE,), ("pre", prefix), (FIM_MID,)]


def example(head_pieces: list, prefix: str, suffix: str, middle: str, order: str = "spm") -> list:
    """A training example: the prompt at the cursor, then the middle and its closing token."""
    return cursor(head_pieces, prefix, suffix, order) + [("mid", middle), (EOT, "end")]


def heal_split(ids: list[int], text: str, decode, pretokenize=None) -> tuple[list[int], str]:
    """(prefix ids without their healed tail, that tail's text) as the server's token healing leaves the prompt;
    (ids, "") where the tail is not whole UTF-8 text of the prefix's end.

    With `pretokenize` (text -> the tokenizer's pre-token pieces) the whole last pre-token goes back when it spans
    at most HEAL_TOKENS tokens: BPE never merges across pre-tokens, so the prompt then ends on a boundary where the
    repository's own token streams end too (the repo memory matches them) and the model saw one in training at
    every word. Otherwise, and without it, the last token alone goes back."""
    if not ids:
        return ids, ""
    n = 1
    if pretokenize is not None:
        tail = text[-HEAL_SCAN:]
        pieces = pretokenize(tail)
        if pieces and len(pieces) > 1:
            want = pieces[-1].decode("utf-8", "replace")
            for k in range(1, min(HEAL_TOKENS, len(ids)) + 1):
                got = decode(ids[-k:])
                if len(got) >= len(want):
                    if got == want:
                        n = k
                    break
    last = decode(ids[-n:])
    if last and "\ufffd" not in last and text.endswith(last):
        return ids[:-n], last
    return ids, ""


class Rendered(NamedTuple):
    ids: list[int]
    mask: list[bool]        # True on the middle and its closing token
    carry: str              # the healed text left out of the prompt, which the model must spell first
    spans: list[tuple[int, int]]  # where each piece's tokens are in ids


def render(pieces: list, encode, special_id, decode, heal: bool = True, pretokenize=None) -> Rendered:
    """Token ids of a layout with one tokenizer (encode: text -> ids; special_id: special text -> id; decode:
    ids -> text, and pretokenize: text -> the tokenizer's pre-token pieces as bytes, for healing)."""
    ids: list[int] = []
    mask: list[bool] = []
    spans: list[tuple[int, int]] = []
    carry = ""
    for p in pieces:
        if isinstance(p, str):
            part, m = encode(p), False
        elif p[0] == "pre":
            part = encode(p[1])
            if heal:
                part, carry = heal_split(part, p[1], decode, pretokenize)
            m = False
        elif p[0] == "mid":
            part, m, carry = encode(carry + p[1]), True, ""
        else:
            part, m = [special_id(p[0])], len(p) == 2
        spans.append((len(ids), len(ids) + len(part)))
        ids += part
        mask += [m] * len(part)
    return Rendered(ids, mask, carry, spans)
