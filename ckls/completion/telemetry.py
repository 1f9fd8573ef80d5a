"""Local acceptance telemetry: what was shown, accepted (fully or in part), how fast. Kept in memory of this
process and reported by the `ckls.stats` command; nothing is written elsewhere or sent anywhere."""
from __future__ import annotations

import threading
import time
from collections import deque


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


class Telemetry:
    def __init__(self, enabled: bool = True, keep: int = 2000):
        self.enabled = enabled
        self._lock = threading.Lock()
        self.started = time.time()
        self.counts = {"requests": 0, "shown": 0, "empty": 0, "cache_hits": 0, "cancelled": 0, "superseded": 0,
                       "timeouts": 0, "errors": 0, "accepted": 0, "partially_accepted": 0, "accepted_chars": 0,
                       "shown_chars": 0, "prefetched": 0, "suppressed": 0,
                       # cold prompts: answers from the full / a reduced prompt, full suggestions made afterwards
                       # in the background, prefills started while the user was idle
                       "answers_full": 0, "answers_reduced": 0, "full_after_reduced": 0, "idle_prefills": 0,
                       "accepted_reduced": 0}
        self.latency_ms: deque[float] = deque(maxlen=keep)
        self.model_ms: deque[float] = deque(maxlen=keep)
        self.shown: dict[str, int] = {}   # suggestion id -> length, for accept ratios

    def count(self, what: str, n: int = 1) -> None:
        if self.enabled:
            with self._lock:
                self.counts[what] = self.counts.get(what, 0) + n

    def request_done(self, latency_ms: float, model_ms: float | None = None) -> None:
        if self.enabled:
            with self._lock:
                self.latency_ms.append(latency_ms)
                if model_ms is not None:
                    self.model_ms.append(model_ms)

    def did_show(self, sid: str, length: int) -> None:
        if self.enabled:
            with self._lock:
                self.counts["shown"] += 1
                self.counts["shown_chars"] += length
                self.shown[sid] = length
                if len(self.shown) > 4096:
                    self.shown.pop(next(iter(self.shown)))

    def did_accept(self, sid: str, length: int | None = None) -> None:
        """The whole suggestion was accepted."""
        if self.enabled:
            with self._lock:
                full = self.shown.pop(sid, None)
                self.counts["accepted"] += 1
                self.counts["accepted_chars"] += max(0, int(length if length is not None else (full or 0)))

    def did_partially_accept(self, sid: str, length: int) -> None:
        """A word or line of the suggestion was accepted; the rest stays shown."""
        if self.enabled:
            with self._lock:
                self.counts["partially_accepted"] += 1
                self.counts["accepted_chars"] += max(0, int(length))

    def stats(self) -> dict:
        with self._lock:
            lat = list(self.latency_ms)
            mod = list(self.model_ms)
            c = dict(self.counts)
        shown = c["shown"] or 0
        return {"enabled": self.enabled, "uptime_s": round(time.time() - self.started, 1), **c,
                "acceptance_rate": round(c["accepted"] / shown, 4) if shown else None,
                "latency_ms": {"n": len(lat), "p50": _pct(lat, 0.5), "p95": _pct(lat, 0.95)},
                "model_ms": {"n": len(mod), "p50": _pct(mod, 0.5), "p95": _pct(mod, 0.95)}}
