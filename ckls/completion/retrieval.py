"""Windows of other files of the repository for a cursor's prompt, from the repository index (ckls.index).

The query is the cursor's anchored lines (index.text.cursor_query): the same for every keystroke within
ANCHOR_LINES lines, so the retrieved windows, which lead the prompt's head, and the K/V cached for them stay put
while the user types; the answer for an anchor is kept (a small LRU) until the index changes. The factory trains
on the same query and the same windows (ckls/index/windows.py, ckls/fim/cursors.py).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from ckls.index import text as index_text

CACHE = 64  # anchors remembered


class Retrieval:
    """retrieve(path, before, line) -> [(path, text)] from `index` (anything with search(query, k, exclude_path)
    -> windows with .path and .text: ckls.index.Index or WindowIndex)."""

    def __init__(self, index, k: int = index_text.RETRIEVED_K):
        self.index = index
        self.k = k
        self._cache: OrderedDict[tuple, list[tuple[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def changed(self) -> None:
        """The index changed (a file saved, a build step): answers may differ now."""
        with self._lock:
            self._cache.clear()

    def retrieve(self, path: str, before: str, line: int) -> list[tuple[str, str]]:
        if self.k <= 0:
            return []
        q = index_text.cursor_query(before, line)
        if not q.strip():
            return []
        key = (path, q)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        wins = self.index.search(q, self.k, exclude_path=path)
        out = [(w.path, index_text.shown(w.text)) for w in wins]
        with self._lock:
            self._cache[key] = out
            while len(self._cache) > CACHE:
                self._cache.popitem(last=False)
        return out
