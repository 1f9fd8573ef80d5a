"""When training may use the cores. The server calls `touch()` on every completion request and every edit: that
raises the cancel flag the native training step polls between layers (so the cores are free within about one
layer's work) and restarts the idle clock. The training loop calls `wait_turn()` before each step: it returns once
the user has been idle long enough (schedule "idle") or no completion is running (schedule "always"), then lowers
the flag. `stop()` ends training for good. With a `power` probe (ckls.tune.power.on_battery), it also waits while the
computer runs on battery, looking again every `recheck_s`."""
from __future__ import annotations

import threading
import time
from typing import Callable

from ckls.runtime import CancelFlag

SCHEDULES = ("idle", "always")
ALWAYS_GAP_S = 0.25  # "always" still leaves a completion this long to finish and the user to type the next key
POWER_RECHECK_S = 30.0  # how often a round paused on battery looks at the power supply again


class Clock:
    """The time Activity reads and waits on: monotonic seconds, and a wait on a condition that a notify or the
    timeout ends. Tests pass a simulated one (same two methods) so that waits take no wall time."""

    @staticmethod
    def now() -> float:
        return time.monotonic()

    @staticmethod
    def wait(cv: threading.Condition, timeout: float) -> None:
        cv.wait(timeout=timeout)


class Activity:
    def __init__(self, schedule: str = "idle", idle_ms: int = 2000,
                 power: Callable[[], bool | None] | None = None, recheck_s: float = POWER_RECHECK_S,
                 clock: Clock | None = None):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule should be one of {', '.join(SCHEDULES)}, not {schedule!r}")
        self.schedule = schedule
        self.clock = clock or Clock()
        self.idle_s = idle_ms / 1000.0
        self.cancel = CancelFlag()
        self._cv = threading.Condition()
        self._last = float("-inf")
        self._busy = 0
        self._stopped = False
        self.yields = 0  # how often training gave the cores back
        self.touched_at = 0.0  # clock time of the last touch()/begin()
        self.yield_delays: list[float] = []  # touch -> the cancelled step returned, seconds (recent ones)
        self.waited_s = 0.0  # time spent in wait_turn (the trainer's budget does not count it)
        self.power, self.recheck_s = power, recheck_s
        self._power_at, self._battery = float("-inf"), False

    # ---- the server's side ---------------------------------------------------------------------------------
    def touch(self) -> None:
        """The user typed or asked for a completion: training yields now."""
        self.cancel.set()  # at once, before the lock: the running step stops at its next poll
        with self._cv:
            self._last = self.touched_at = self.clock.now()
            self.cancel.set()  # again under the lock, so a wait_turn() that just cleared it cannot win the race
            self._cv.notify_all()

    def begin(self) -> None:
        """A completion starts: no training step until end()."""
        self.cancel.set()
        with self._cv:
            self._busy += 1
            self._last = self.touched_at = self.clock.now()
            self.cancel.set()

    def end(self) -> None:
        with self._cv:
            self._busy = max(0, self._busy - 1)
            self._last = self.clock.now()
            self._cv.notify_all()

    def allow_battery(self) -> None:
        """The user asked for this round: it no longer waits for mains power."""
        with self._cv:
            self.power, self._battery = None, False
            self._cv.notify_all()

    def stop(self) -> None:
        self.cancel.set()
        with self._cv:
            self._stopped = True
            self._cv.notify_all()

    # ---- the trainer's side --------------------------------------------------------------------------------
    def yielded(self) -> None:
        """The trainer's step stopped on the flag: record how long that took after the user's action."""
        self.yields += 1
        self.yield_delays = (self.yield_delays + [self.clock.now() - self.touched_at])[-32:]

    @property
    def stopped(self) -> bool:
        return self._stopped

    def idle_for(self) -> float:
        return self.clock.now() - self._last

    def on_battery(self) -> bool:
        """Whether training should pause for the battery (the probe's answer, read at most every recheck_s)."""
        probe = self.power  # (allow_battery may clear it meanwhile)
        if probe is None:
            return False
        now = self.clock.now()
        if now - self._power_at >= self.recheck_s:
            self._battery, self._power_at = probe() is True, now
        return self._battery and self.power is not None

    @property
    def paused(self) -> str | None:
        return "on battery" if self._battery and self.power is not None else None

    def wait_turn(self) -> bool:
        """Blocks until training may run a step; False once stopped."""
        gap = self.idle_s if self.schedule == "idle" else ALWAYS_GAP_S
        t0 = self.clock.now()
        try:
            while self.on_battery():  # (the probe may run a program: not under the lock)
                with self._cv:
                    if self._stopped:
                        return False
                    self.clock.wait(self._cv, max(0.0, self._power_at + self.recheck_s - self.clock.now()))
            with self._cv:
                while not self._stopped:
                    left = gap - (self.clock.now() - self._last)
                    if self._busy == 0 and left <= 0:
                        self.cancel.clear()
                        return True
                    self.clock.wait(self._cv, max(left, 0.05) if self._busy == 0 else 0.5)
                return False
        finally:
            self.waited_s += self.clock.now() - t0
