"""Typed-ahead cache: suggestions keyed by the text around the cursor. When the user types the start of a shown
suggestion, the rest is served from here at once, without the model. Each entry remembers whether it came from
the full prompt or a reduced one (a cold answer), so a full-context suggestion replaces a reduced one and never
the other way round."""
from __future__ import annotations

from collections import OrderedDict

PREFIX_KEY = 512   # characters of prefix that identify a position
SUFFIX_KEY = 256


def _key(uri: str, prefix: str, suffix: str) -> tuple[str, str, str]:
    return uri, prefix[-PREFIX_KEY:], suffix[:SUFFIX_KEY]


class SuggestionCache:
    def __init__(self, max_entries: int = 256, max_typed: int = 256):
        self.max_entries = max_entries
        self.max_typed = max_typed
        self._d: OrderedDict[tuple, tuple[str, bool]] = OrderedDict()   # key -> (text, full context)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._d)

    def put(self, uri: str, prefix: str, suffix: str, text: str, full: bool = True) -> None:
        if not text:
            return
        k = _key(uri, prefix, suffix)
        old = self._d.get(k)
        if old is not None and old[1] and not full:
            return
        self._d[k] = (text, full)
        self._d.move_to_end(k)
        while len(self._d) > self.max_entries:
            self._d.popitem(last=False)

    def get(self, uri: str, prefix: str, suffix: str) -> str | None:
        """The suggestion for this position: stored here directly, or stored at an earlier position on the same
        line whose suggestion starts with what was typed since."""
        got = self.lookup(uri, prefix, suffix)
        return got[0] if got is not None else None

    def lookup(self, uri: str, prefix: str, suffix: str) -> tuple[str, bool] | None:
        """(suggestion, full context) as get() finds it."""
        line_start = prefix.rfind("\n") + 1
        for i in range(0, min(self.max_typed, len(prefix) - line_start) + 1):
            k = _key(uri, prefix[: len(prefix) - i], suffix)
            got = self._d.get(k)
            if got is None:
                continue
            text, full = got
            typed = prefix[len(prefix) - i:]
            if text.startswith(typed) and len(text) > len(typed):
                self._d.move_to_end(k)
                self.hits += 1
                return text[len(typed):], full
        self.misses += 1
        return None

    def clear(self) -> None:
        self._d.clear()
