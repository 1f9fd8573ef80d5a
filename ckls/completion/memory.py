"""The repository memory at the logits: the workspace's files as token streams with the model's tokenizer, in a
bounded native n-gram / suffix-match cache (ckls.runtime.ngram_memory) that the engine mixes into every
generation step. A save replaces the file's tokens (add_file); a deletion removes them (remove_file).

    mem = RepoMemory(engine.model.tokenizer, capacity_tokens=settings.memory_tokens)
    for path in files: mem.add_file(path, text)
    engine.attach_memory(mem)

Measured on held-out files of three unseen PyPI projects: bench/RESULTS.md ("Repo memory at the logits")."""
from __future__ import annotations

from ckls.runtime.ngram_memory import DEFAULT_RULE, RULES, MixRule, NgramMemory

__all__ = ["RepoMemory", "RULES", "MixRule", "DOCUMENT_KEY", "DOCUMENT_SLOTS"]

DOCUMENT_KEY = "\0document"  # the open document's slots: + "<" (before its line), ">" (after); no path starts with NUL
DOCUMENT_SLOTS = (DOCUMENT_KEY + "<", DOCUMENT_KEY + ">")


class RepoMemory:
    def __init__(self, tokenizer, capacity_tokens: int = 1 << 20, rule: str | MixRule = DEFAULT_RULE):
        self.tokenizer = tokenizer
        self.native = NgramMemory(capacity_tokens, rule)
        self._document: tuple = ()

    def add_file(self, path: str, text: str) -> int:
        """Tokenizes text (as the prompt does: special-token text stays plain text) and replaces path's tokens
        in the memory; returns the number stored. Any thread (the tokenizer and the memory are thread-safe)."""
        ids = self.tokenizer.encode(text.replace("\r\n", "\n")) if text else []
        n = self.native.add(path, ids)
        held = self._document
        if held and held[2] == path:  # (a first copy of the held document's file, added while it is held)
            self.native.hide(path, True)
        return n

    def hold_document(self, before: str, after: str, key: str | None = None) -> bool:
        """The open document at the cursor in the memory's one document slot, beside the workspace's files: its
        text before the cursor's line and after it, as two streams (no sequence runs across the cursor's line,
        whose start the prompt's context matches in full). A file repeats itself most of all (a test's
        assertions, a table's rows), and the buffer holds what no save has. `key`: the document's own file in
        the memory (its workspace path), hidden while it is held: its saved copy runs on from the cursor's line
        into the lines after it, so a new line typed there would be "continued" with the line already below.
        Re-tokenized only when the text changed (a new line, another file), not on keystrokes within the line.
        Returns whether it was replaced."""
        if (before, after, key) == self._document:
            return False
        old = self._document[2] if self._document else None
        if old != key:
            if old is not None:
                self.native.hide(old, False)
            if key is not None:
                self.native.hide(key, True)
        self._document = (before, after, key)
        self.add_file(DOCUMENT_SLOTS[0], before)
        self.add_file(DOCUMENT_SLOTS[1], after)
        return True

    def remove_file(self, path: str) -> bool:
        return self.native.remove(path)

    def clear(self) -> None:
        self.native.clear()
        self._document = ()

    @property
    def n_tokens(self) -> int:
        return self.native.n_tokens

    @property
    def n_files(self) -> int:
        """The workspace's files held (the open document's slots not counted)."""
        return self.native.n_files - sum(k in self.native for k in DOCUMENT_SLOTS)

    @property
    def rule(self) -> MixRule:
        return self.native.rule

    @rule.setter
    def rule(self, r: str | MixRule) -> None:
        self.native.rule = r if isinstance(r, MixRule) else RULES[r]

    def stats(self) -> dict:
        n = self.native
        return {"files": self.n_files, "tokens": n.n_tokens, "capacity": n.capacity, "rule": n.rule.name,
                "steps": n.steps, "spoke": n.spoke,
                # the held document's file in the workspace ("" outside it), None while none is held
                "document": (self._document[2] or "") if self._document else None}
