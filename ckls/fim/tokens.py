"""The special tokens of the prompt layout: their texts in ckls models (ids 0..6 in this order), and the ids any
model's tokenizer gives them (FimFormat, from the GGUF's tokenizer.ggml.fim_*_token_id)."""
from __future__ import annotations

from dataclasses import dataclass

EOT = "<|endoftext|>"
FIM_PRE, FIM_MID, FIM_SUF, FIM_PAD = "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>"
REPO, FILE_SEP = "<|repo_name|>", "<|file_sep|>"
SPECIALS = [EOT, FIM_PRE, FIM_MID, FIM_SUF, FIM_PAD, REPO, FILE_SEP]


@dataclass(frozen=True)
class FimFormat:
    """A model's FIM token ids (None where it has none) and the ids that end a completion."""
    pre: int | None
    suf: int | None
    mid: int | None
    sep: int | None
    stop_ids: tuple[int, ...]
    eot: int | None = None

    @property
    def has_fim(self) -> bool:
        return self.pre is not None and self.suf is not None and self.mid is not None

    def special_id(self, text: str) -> int | None:
        """The id of a special token of the layout, by its text."""
        return {FIM_PRE: self.pre, FIM_SUF: self.suf, FIM_MID: self.mid, FILE_SEP: self.sep, EOT: self.eot}[text]

    @classmethod
    def from_tokenizer(cls, tok) -> "FimFormat":
        """From a runtime tokenizer (its fim_*_id, eos_id, eot_id, eom_id attributes)."""
        ids = {k: getattr(tok, f"fim_{k}_id", None) for k in ("pre", "suf", "mid", "pad", "rep", "sep")}
        stops = {ids[k] for k in ids if ids[k] is not None}
        eos = getattr(tok, "eos_id", None)
        if eos is not None:
            stops.add(eos)
        for name in ("eot_id", "eom_id"):
            if getattr(tok, name, None) is not None:
                stops.add(getattr(tok, name))
        return cls(ids["pre"], ids["suf"], ids["mid"], ids["sep"], tuple(sorted(stops)), eos)
