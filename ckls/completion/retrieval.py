"""Windows of other files of the repository for a cursor's prompt, from the repository index (ckls.index).

The query is the cursor's anchored lines (index.text.cursor_query): the same for every keystroke within
ANCHOR_LINES lines, so the retrieved windows, which lead the prompt's head, and the K/V cached for them stay put
while the user types; the answer for an anchor is kept (a small LRU) until the index changes. The factory trains
on the same query and the same windows (ckls/index/windows.py, ckls/fim/cursors.py).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

from ckls.index import text as index_text
from ckls.index.windows import at_cursor

CACHE = 64  # anchors remembered


class Retrieval:
    """retrieve(path, before, line) -> [(path, text)] from `index` (anything with search(query, k, exclude_path)
    -> windows with .path and .text: ckls.index.Index or WindowIndex)."""

    def __init__(self, index, k: int = index_text.RETRIEVED_K, shift: int = index_text.SHOW_SHIFT):
        self.index = index
        self.k = k
        self.shift = shift  # windows.at_cursor's
        self._cache: OrderedDict[tuple, list[tuple[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def changed(self) -> None:
        """The index changed (a file saved, a build step): answers may differ now."""
        with self._lock:
            self._cache.clear()

    def retrieve(self, path: str, before: str, line: int) -> list[tuple[str, str]]:
        if self.k <= 0:
            return []
        key = (path, index_text.cursor_query(before, line))
        if not key[1].strip():
            return []
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        out = at_cursor(self.index, path, before, line, self.k, self.shift)
        with self._lock:
            self._cache[key] = out
            while len(self._cache) > CACHE:
                self._cache.popitem(last=False)
        return out


class WorkspaceIndex:
    """The workspace's index as the server keeps it: built in a background thread that gives way to the user
    (pace: no file is read while a completion runs, within IDLE_S of a keystroke, or while busy() — the engine
    finishing a full prompt in the background), updated file by file on save,
    and the Retrieval the prompts read from. Progress: progress(done, total); done(report or None)."""

    IDLE_S = 0.25

    def __init__(self, root: str, state_dir: str | None = None, warn=None, busy=None):
        from ckls.config import workspace_state_dir
        from ckls.index import Index

        self.index = Index(root, state_dir or workspace_state_dir("index", root), warn=warn)
        self.retrieval = Retrieval(self.index)
        self._busy = 0
        self._last = 0.0
        self._cv = threading.Condition()
        self._stopped = False
        self.busy = busy or (lambda: False)  # more work that goes first (the engine's background prefill)

    # ---- the server's side: typing and completions ----------------------------------------------------------
    def touch(self) -> None:
        with self._cv:
            self._last = time.monotonic()

    def begin(self) -> None:
        with self._cv:
            self._busy += 1

    def end(self) -> None:
        with self._cv:
            self._busy = max(0, self._busy - 1)
            self._last = time.monotonic()
            self._cv.notify_all()

    def pace(self) -> None:
        with self._cv:
            while not self._stopped:
                wait = self._last + self.IDLE_S - time.monotonic()
                if self._busy == 0 and wait <= 0 and not self.busy():
                    return
                self._cv.wait(timeout=max(wait, 0.02))

    # ---- building and updates --------------------------------------------------------------------------------
    def start(self, progress=None, done=None):
        def finished(rep):
            self.retrieval.changed()
            if done is not None:
                done(rep)
        return self.index.start_build(pace=self.pace, progress=progress, done=finished)

    def saved(self, path: str, text: str | None = None) -> None:
        """A file was saved (text: its content, or None to read it): its windows and definitions are replaced."""
        if self.index.update(path, text):
            self.retrieval.changed()

    def removed(self, path: str) -> None:
        self.index.remove(path)
        self.retrieval.changed()

    def close(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        self.index.cancel()
        self.index.close()
