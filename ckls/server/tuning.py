"""The server's side of ckls.tune: `ckls.tune.start|stop|status`, work-done progress from the training thread,
the user's activity (every completion request and edit makes training yield), and the hot swap of a new adapter
into the serving model between completions."""
from __future__ import annotations

import asyncio
import logging
import os
import threading

from lsprotocol import types

from ckls.server import progress
from ckls.tune import power
from ckls.tune.loop import Progress, Summary, TuneOptions, Tuner, TuneUnavailable
from ckls.tune.scheduler import Activity

log = logging.getLogger("ckls.tune")


class TuneControl:
    def __init__(self, ls):
        self.ls = ls
        self.activity: Activity | None = None
        self.tuner: Tuner | None = None
        self.thread: threading.Thread | None = None
        self.summary: Summary | None = None
        self.error: str | None = None
        self.adapter: str | None = None       # the adapter file the serving model runs with
        self._token: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    # ---- activity (called by the completion and document handlers) --------------------------------------------
    def touch(self) -> None:
        if self.activity is not None:
            self.activity.touch()

    def begin(self) -> None:
        if self.activity is not None:
            self.activity.begin()

    def end(self) -> None:
        if self.activity is not None:
            self.activity.end()

    # ---- commands ---------------------------------------------------------------------------------------------
    def _tuner(self, activity: Activity | None = None) -> Tuner:
        """The workspace's tuner; without an activity only for its paths (apply_saved)."""
        s = self.ls.settings
        root = self.ls.root
        if not root or not os.path.isdir(root):
            raise TuneUnavailable("the workspace has no folder to learn from")
        state_dir = os.path.expanduser(s.tune_dir) if s.tune_dir else None
        return Tuner(root, s.resolved_model_path, TuneOptions.from_settings(s), state_dir, activity,
                     on_progress=self._progress, on_adapter=self._adapter_ready)

    async def start(self, auto: bool = False) -> dict:
        """auto: started by the server (tune_enabled at start-up or a save), not by the user's command."""
        if self.running:
            if not auto and self.activity is not None:
                self.activity.allow_battery()  # the user's command runs a round the server paused on battery
            return self.status()
        s = self.ls.settings
        # a round the server starts on its own waits while on battery; one the user asks for runs
        activity = Activity(s.tune_schedule, s.tune_idle_ms,
                            power=power.on_battery if auto and not s.tune_on_battery else None)
        try:
            self.tuner = self._tuner(activity)
            self.activity = activity
        except TuneUnavailable as exc:
            self.error = str(exc)
            return self.status()
        self.summary, self.error = None, None
        self._token = await progress.begin(self.ls, "tune", "ckls: tuning on this workspace")
        loop = self._loop = asyncio.get_running_loop()
        self.thread = threading.Thread(target=self._run, args=(loop,), name="ckls-tune", daemon=True)
        self.thread.start()
        return self.status()

    async def stop(self) -> dict:
        if self.activity is not None:
            self.activity.stop()
        if self.thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.thread.join, 30.0)
        return self.status()

    def status(self) -> dict:
        out = {"running": self.running, "error": self.error, "adapter_in_use": self.adapter,
               "summary": self.summary.as_dict() if self.summary else None,
               "yields": self.activity.yields if self.activity else 0,
               "paused": self.activity.paused if self.activity else None}
        if self.tuner is not None:
            out.update(self.tuner.status())
            out["progress_line"] = self.tuner.last.line()
        return out

    # ---- the training thread ----------------------------------------------------------------------------------
    def _run(self, loop) -> None:
        try:
            self.summary = self.tuner.run()
        except TuneUnavailable as exc:
            self.error = str(exc)
        except Exception as exc:  # a failed round must not take the server down
            log.exception("tuning failed")
            self.error = f"tuning failed: {exc}"
        loop.call_soon_threadsafe(self._end_progress)

    def _progress(self, p: Progress) -> None:
        if p.phase == "warning" and self._loop is not None:  # damaged tuning state set aside: the user is told
            try:
                self._loop.call_soon_threadsafe(self.ls.tell, f"tuning: {p.message}")
            except RuntimeError:
                pass
        token = self._token
        if token is None:
            return
        frac = p.fraction if p.fraction is not None else p.step / p.total if p.total else None
        pct = int(100 * frac) if frac is not None else None
        progress.report_threadsafe(self.ls, self._loop, token, p.line(), pct)

    def _end_progress(self) -> None:
        token, self._token = self._token, None
        msg = self.error or (f"{self.summary.status}: {self.summary.steps} steps" + (
            f", held-out loss {self.summary.heldout_before:.3f} -> {self.summary.heldout_best:.3f}"
            if self.summary.heldout_best is not None and self.summary.heldout_before is not None else "")
            if self.summary else "ended")
        progress.end(self.ls, token, msg)
        self.ls.tell(f"tuning {msg}", types.MessageType.Info, show=False)

    # ---- serving the adapter ----------------------------------------------------------------------------------
    def _adapter_ready(self, path: str) -> None:
        """From the training thread: swap the new adapter in between two completions."""
        if self.ls.settings.tune_use_adapter:
            self._serve(path)

    def _serve(self, path: str | None) -> None:
        """Swaps the adapter in between two completions (in the model thread, which then runs _served)."""
        self.ls.engine.serve_adapter(path).add_done_callback(lambda fut: self._served(path, fut))

    def _served(self, path: str | None, fut) -> None:
        try:
            if not fut.result():
                return  # no model loaded
        except Exception as exc:
            log.warning("adapter %s not used: %s", path, exc)
            self.adapter = None
            return
        self.adapter = path
        self.ls.scheduler.cache.clear()  # cached suggestions came from the old weights
        log.info("serving with adapter %s", path)

    def apply_saved(self) -> None:
        """After a model (re)load: serve the workspace's adapter if an earlier round left one."""
        if not self.ls.settings.tune_use_adapter or not self.ls.root:
            return
        try:
            tuner = self.tuner or self._tuner()
        except TuneUnavailable:
            return
        if os.path.isfile(tuner.adapter_path):
            self._serve(tuner.adapter_path)
