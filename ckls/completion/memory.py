"""The repository memory at the logits: the workspace's files as token streams with the model's tokenizer, in a
bounded native n-gram / suffix-match cache (ckls.runtime.ngram_memory) that the engine mixes into every
generation step. A save replaces the file's tokens (add_file); a deletion removes them (remove_file).

    mem = RepoMemory(engine.model.tokenizer, capacity_tokens=settings.memory_tokens)
    for path in files: mem.add_file(path, text)
    engine.attach_memory(mem)

Measured on held-out files of three unseen PyPI projects: bench/RESULTS.md ("Repo memory at the logits")."""
from __future__ import annotations

from ckls.runtime.ngram_memory import DEFAULT_RULE, RULES, MixRule, NgramMemory

__all__ = ["RepoMemory", "RULES", "MixRule"]


class RepoMemory:
    def __init__(self, tokenizer, capacity_tokens: int = 1 << 20, rule: str | MixRule = DEFAULT_RULE):
        self.tokenizer = tokenizer
        self.native = NgramMemory(capacity_tokens, rule)

    def add_file(self, path: str, text: str) -> int:
        """Tokenizes text (as the prompt does: special-token text stays plain text) and replaces path's tokens
        in the memory; returns the number stored. Any thread (the tokenizer and the memory are thread-safe)."""
        ids = self.tokenizer.encode(text.replace("\r\n", "\n")) if text else []
        return self.native.add(path, ids)

    def remove_file(self, path: str) -> bool:
        return self.native.remove(path)

    def clear(self) -> None:
        self.native.clear()

    @property
    def n_tokens(self) -> int:
        return self.native.n_tokens

    @property
    def n_files(self) -> int:
        return self.native.n_files

    @property
    def rule(self) -> MixRule:
        return self.native.rule

    @rule.setter
    def rule(self, r: str | MixRule) -> None:
        self.native.rule = r if isinstance(r, MixRule) else RULES[r]

    def stats(self) -> dict:
        n = self.native
        return {"files": n.n_files, "tokens": n.n_tokens, "capacity": n.capacity, "rule": n.rule.name,
                "steps": n.steps, "spoke": n.spoke}
