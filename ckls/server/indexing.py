"""The server's side of the repository index (ckls.completion.retrieval.WorkspaceIndex): built in the background
once the workspace is known and `retrieval` or `memory_enabled` is on, with work-done progress; a saved file
re-indexed off the event loop; typing and completions make the build give way. With `memory_enabled`, the token
memory (ckls.completion.memory) is filled from the index's files once it is built, and kept up to date on save."""
from __future__ import annotations

import asyncio
import logging
import os

from lsprotocol import types

from ckls.completion.retrieval import WorkspaceIndex
from ckls.server import progress

log = logging.getLogger("ckls.server")


class IndexControl:
    def __init__(self, ls):
        self.ls = ls
        self.workspace: WorkspaceIndex | None = None
        self.status = "off"
        self.memory = None  # RepoMemory attached to the engine, when memory_enabled
        self._token: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def retrieval(self):
        """What the prompt reads from (None while retrieval is off)."""
        return self.workspace.retrieval if self.workspace is not None and self.ls.settings.retrieval else None

    # ---- activity ---------------------------------------------------------------------------------------------
    def touch(self) -> None:
        if self.workspace is not None:
            self.workspace.touch()

    def begin(self) -> None:
        if self.workspace is not None:
            self.workspace.begin()

    def end(self) -> None:
        if self.workspace is not None:
            self.workspace.end()

    # ---- life cycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Opens the workspace's index and builds what changed since the last session, in the background."""
        root = self.ls.root
        s = self.ls.settings
        if self.workspace is not None:
            self.refresh_memory()  # memory switched on, or a new model: filled from the index as it is
            return
        if not (s.retrieval or s.memory_enabled) or not root or not os.path.isdir(root):
            return
        self._loop = asyncio.get_running_loop()
        try:
            self.workspace = WorkspaceIndex(root, warn=self._warn, busy=lambda: self.ls.engine.prefill_pending)
        except Exception as exc:  # an unwritable cache folder: completion goes on without the index
            log.exception("index unavailable")
            self.status = f"unavailable: {exc}"
            self.ls.tell(f"repository index unavailable: {exc}")
            return
        self.status = "building"
        self._token = await progress.begin(self.ls, "index", "ckls: indexing the workspace")
        self.workspace.start(progress=self._progress, done=self._done)

    def saved(self, path: str, text: str) -> None:
        """A saved file (its path on disk and text) is re-indexed in a worker thread."""
        if self.workspace is None or self._loop is None:
            return
        self._loop.run_in_executor(None, self._update, path, text)

    def _update(self, path: str, text: str) -> None:
        try:
            self.workspace.saved(path, text)
            mem = self.memory
            rel = self.workspace.index.rel(path)
            if mem is not None and rel is not None:
                mem.add_file(rel, text)
        except Exception:  # the next build reads the file again
            log.exception("index update failed for %s", path)

    # ---- the token memory -------------------------------------------------------------------------------------
    def memory_key(self, uri: str) -> str | None:
        """The key the memory holds a workspace file under (its path in the index), None outside the workspace."""
        ws = self.workspace
        if ws is None:
            return None
        try:
            return ws.index.rel(uri)
        except Exception:  # (a closing index: the memory then simply does not hide the file)
            return None

    def refresh_memory(self) -> None:
        """(Re)builds the token memory from the index in a worker thread when memory_enabled (with the loaded
        model's tokenizer); detaches it when off."""
        eng = self.ls.engine
        if not self.ls.settings.memory_enabled or self.workspace is None or not eng.ready:
            if self.memory is not None:
                eng.attach_memory(None)
                self.memory = None
            return
        if self._loop is not None:
            self._loop.run_in_executor(None, self._build_memory)

    def _build_memory(self) -> None:
        from ckls.completion.memory import RepoMemory
        try:
            eng = self.ls.engine
            mem = RepoMemory(eng.model.tokenizer, capacity_tokens=self.ls.settings.memory_tokens)
            for path, text in self.workspace.index.texts():
                self.workspace.pace()
                mem.add_file(path, text)
            self.memory = mem
            eng.attach_memory(mem)
            log.info("repository memory: %d tokens of %d files", mem.n_tokens, mem.n_files)
        except Exception:  # completion goes on without it
            log.exception("repository memory failed")

    def close(self) -> None:
        if self.workspace is not None:
            self.workspace.close()
            self.workspace = None

    # ---- progress ---------------------------------------------------------------------------------------------
    def _warn(self, msg: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.ls.tell, msg)

    def _progress(self, done: int, total: int) -> None:
        if done % 50 and done != total:
            return
        progress.report_threadsafe(self.ls, self._loop, self._token, f"{done}/{total} files",
                                   int(100 * done / max(total, 1)))

    def _done(self, rep) -> None:
        if isinstance(rep, Exception):
            self.status = f"build failed: {rep}"
        else:
            self.status = (f"{'cancelled' if rep.cancelled else 'ready'}: {rep.total} files "
                           f"({rep.indexed} indexed, {rep.unchanged} unchanged) in {rep.seconds:.1f} s")
        try:
            self._loop.call_soon_threadsafe(self._end_progress)
            self._loop.call_soon_threadsafe(self.refresh_memory)
        except RuntimeError:
            pass

    def _end_progress(self) -> None:
        token, self._token = self._token, None
        progress.end(self.ls, token, self.status)
        self.ls.tell(f"index {self.status}", types.MessageType.Info, show=False)

