"""Training's turn: the cancel flag goes up at once on activity, steps wait for quiet (schedule idle) or only
for running completions (schedule always), and stop() ends the wait."""
import threading
import time

import pytest

from ckls.tune.scheduler import Activity


def test_idle_schedule_waits_for_quiet():
    a = Activity("idle", idle_ms=200)
    assert a.wait_turn() and not a.cancel.is_set  # nobody typed yet
    a.touch()
    assert a.cancel.is_set  # a running step sees this at its next poll
    t0 = time.monotonic()
    assert a.wait_turn()
    waited = time.monotonic() - t0
    assert 0.18 <= waited < 1.0 and not a.cancel.is_set


def test_typing_keeps_training_away():
    """Training's turn comes only once idle_ms have passed since the latest keystroke (on a loaded machine a
    pause between two keystrokes may itself exceed idle_ms: then the turn comes in that pause, as it should)."""
    a = Activity("idle", idle_ms=150)
    a.touch()
    touches = [time.monotonic()]
    turns = []

    def trainer():
        turns.append(a.wait_turn())
        turns.append(time.monotonic())

    th = threading.Thread(target=trainer)
    th.start()
    stop_typing = time.monotonic() + 0.5
    while time.monotonic() < stop_typing and th.is_alive():
        a.touch()
        touches.append(time.monotonic())
        time.sleep(0.03)
    th.join(3)
    assert turns[0]
    last = max(t for t in touches if t <= turns[1])
    assert turns[1] - last >= 0.145


def test_always_schedule_waits_for_running_completions():
    a = Activity("always", idle_ms=10_000)
    a.begin()
    got = []
    th = threading.Thread(target=lambda: got.append((a.wait_turn(), time.monotonic())))
    th.start()
    time.sleep(0.4)
    assert not got and a.cancel.is_set  # a completion is running: no step starts
    t_end = time.monotonic()
    a.end()
    th.join(3)
    assert got[0][0] and got[0][1] - t_end < 3.0  # the short gap, not idle_ms (10 s)


def test_stop_ends_the_wait():
    a = Activity("idle", idle_ms=60_000)
    a.touch()
    got = []
    th = threading.Thread(target=lambda: got.append(a.wait_turn()))
    th.start()
    time.sleep(0.1)
    a.stop()
    th.join(2)
    assert got == [False] and a.stopped and a.cancel.is_set
    with pytest.raises(ValueError):
        Activity("sometimes")
