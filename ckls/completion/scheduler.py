"""When the model runs: typed-ahead cache first, then an adaptive debounce, then one generation in flight — a new
request raises the old one's cancel flag, so the model is free within one token step. A hard time cap bounds
every request; after an accepted suggestion the next one is prefetched into the cache.

Cold prompts: a request whose prompt cannot be evaluated within the cap is answered from a reduced prompt (the
engine decides, from its measured speed); the full-context suggestion computed afterwards in the background goes
into the cache, so asking again at that place, or typing on, gets it. While the user is idle after opening a
document or editing far from the last place, the prompt there is evaluated ahead (idle_prefill)."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

from ckls.completion.cache import SuggestionCache
from ckls.config import Settings
from ckls.completion.context import Context
from ckls.completion.engine import Engine, Job, NoModel, Result
from ckls.completion.telemetry import Telemetry
from ckls.runtime import Cancelled

log = logging.getLogger("ckls.scheduler")
REPLY_MS = 15  # of the cap, kept for post-processing and sending the answer after generation stops


@dataclass
class Answer:
    text: str
    source: str          # "model", "cache"
    latency_ms: float
    result: Result | None = None
    context: str = "full"  # "full", or "reduced": answered from the reduced prompt of a cold request


class Scheduler:
    def __init__(self, engine: Engine, settings: Settings, telemetry: Telemetry | None = None):
        self.engine = engine
        self.settings = settings
        self.cache = SuggestionCache()
        self.telemetry = telemetry or Telemetry()
        self._seq = 0
        self._current: Job | None = None
        self._last_request = 0.0
        self._interval_ema = 1.0   # seconds between requests, smoothed
        self._prefetch_task: asyncio.Task | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _debounce_s(self) -> float:
        """No wait at a normal typing pace (answers are cancelled cheaply); during a fast burst — keystrokes
        closer than debounce_max_ms — wait about half the interval, since the next key would cancel the work."""
        s = self.settings
        lo, hi = s.debounce_ms / 1e3, max(s.debounce_max_ms, s.debounce_ms) / 1e3
        if self._interval_ema >= hi:
            return lo
        return min(hi, max(lo, 0.5 * self._interval_ema))

    def cancel_current(self, hard: bool = True) -> None:
        if self._current is not None:
            self._current.cancel.set()
            if hard:
                self._current.hard.set()

    def _finished(self, job: Job) -> None:
        if self._current is job:
            self._current = None

    async def complete(self, ctx: Context, invoked: bool = False, t0: float | None = None) -> Answer | None:
        """The suggestion at ctx, or None when superseded, cancelled or nothing worth showing. t0: when the request
        came (time.monotonic()), if earlier than now."""
        t0 = time.monotonic() if t0 is None else t0
        tm = self.telemetry
        tm.count("requests")
        if self._last_request:
            self._interval_ema = 0.7 * self._interval_ema + 0.3 * min(t0 - self._last_request, 2.0)
        self._last_request = t0
        self._seq += 1
        seq = self._seq
        self._cancel_idle()
        hit = self.cache.lookup(ctx.uri, ctx.before, ctx.after)
        if hit is not None:
            tm.count("cache_hits")
            ms = (time.monotonic() - t0) * 1e3
            tm.request_done(ms)
            return Answer(hit[0], "cache", ms, context="full" if hit[1] else "reduced")
        if not invoked:
            await asyncio.sleep(self._debounce_s())
            if seq != self._seq:
                tm.count("superseded")
                return None
        answer = await self._run(ctx, seq, t0)
        if answer is not None:
            tm.request_done(answer.latency_ms, answer.result.total_ms if answer.result else None)
        return answer

    async def _run(self, ctx: Context, seq: int, t0: float, prefetch: bool = False) -> Answer | None:
        s = self.settings
        cur = self._current
        # a newer keystroke in the same document shares the old prompt's head: let that part finish
        self.cancel_current(hard=cur is not None and cur.ctx.uri != ctx.uri)
        loop = self._loop = asyncio.get_running_loop()
        job = Job(ctx, deadline=t0 + (s.latency_ms - REPLY_MS) / 1e3, max_tokens=s.max_tokens,
                  quick=s.quick_start and not prefetch, on_full=self._full_from_thread)
        self._current = job
        fut = self.engine.submit(job)
        # the job is current until the model thread is done with it (a cancelled request may still be finishing
        # its prompt head), so a request for another document can stop it outright
        fut.add_done_callback(lambda _f, j=job: loop.call_soon_threadsafe(self._finished, j))
        try:
            res: Result = await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            job.cancel.set()  # the client cancelled the request: free the model (after the shared head)
            self.telemetry.count("cancelled")
            raise
        except Cancelled:
            self.telemetry.count("superseded")
            return None
        except NoModel:
            raise
        except Exception:
            log.exception("completion failed")
            self.telemetry.count("errors")
            return None
        if res.timed_out:
            self.telemetry.count("timeouts")
        full = res.context == "full"
        self.telemetry.count("answers_full" if full else "answers_reduced")
        if res.text:
            self.cache.put(ctx.uri, ctx.before, ctx.after, res.text, full)
        if seq != self._seq and not prefetch:
            self.telemetry.count("superseded")
            return None
        return Answer(res.text, "model", (time.monotonic() - t0) * 1e3, res, res.context)

    # ---- background work ----------------------------------------------------------------------------------------
    def _full_from_thread(self, ctx: Context, res: Result) -> None:
        """The engine's full-context suggestion for a request answered from a reduced prompt (model thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._full_ready, ctx, res)

    def _full_ready(self, ctx: Context, res: Result) -> None:
        self.telemetry.count("full_after_reduced")
        if res.text:
            self.cache.put(ctx.uri, ctx.before, ctx.after, res.text, True)

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def idle_prefill(self, make_ctx: Callable[[], Context | None], head_only: bool = False) -> None:
        """Once the user has been idle for prefill_idle_ms (no request, no other edit that asks again), evaluates
        the prompt that make_ctx() describes, in the background. A request in between cancels it."""
        ms = self.settings.prefill_idle_ms
        self._cancel_idle()
        if ms <= 0 or not self.engine.ready:
            return
        try:
            loop = self._loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (the state used outside a server)
            return
        seq = self._seq

        def fire():
            self._idle = None
            if seq != self._seq or (self._current is not None and not self._current.cancel.is_set):
                return  # a request came meanwhile (or is still running): its own prompt is what matters
            ctx = make_ctx()
            if ctx is not None:
                self.telemetry.count("idle_prefills")
                self.engine.prefill(ctx, head_only)

        self._idle = loop.call_later(ms / 1e3, fire)

    def prefetch(self, ctx: Context) -> None:
        """Computes the suggestion at ctx in the background (after an accept) so the next request hits the cache."""
        if not self.settings.prefetch or self._current is not None:
            return

        async def run():
            try:
                ans = await self._run(ctx, self._seq, time.monotonic(), prefetch=True)
                if ans is not None:
                    self.telemetry.count("prefetched")
            except (NoModel, asyncio.CancelledError):
                pass

        self._prefetch_task = asyncio.get_running_loop().create_task(run())
