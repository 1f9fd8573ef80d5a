"""Training's turn: the cancel flag goes up at once on activity, steps wait for quiet (schedule idle) or only
for running completions (schedule always), and stop() ends the wait. Time is simulated (conftest's FakeClock):
the waits take no wall time and their lengths are exact."""
import pytest

from ckls.tune.scheduler import ALWAYS_GAP_S, Activity


def test_idle_schedule_waits_for_quiet(fake_clock):
    a = Activity("idle", idle_ms=250, clock=fake_clock)
    assert a.wait_turn() and not a.cancel.is_set  # nobody typed yet
    assert fake_clock.waits == []
    a.touch()
    assert a.cancel.is_set  # a running step sees this at its next poll
    t0 = fake_clock.now()
    assert a.wait_turn()
    assert fake_clock.now() - t0 == 0.25 and not a.cancel.is_set
    assert a.waited_s == 0.25


def test_typing_keeps_training_away(fake_clock):
    """Training's turn comes only once idle_ms have passed since the latest keystroke."""
    a = Activity("idle", idle_ms=125, clock=fake_clock)  # (binary fractions of a second: sums are exact)
    t0 = fake_clock.now()
    a.touch()
    keys = [t0 + 0.03125 * i for i in range(1, 17)]  # typing for 0.5 s, a key every 31 ms
    for t in keys:
        fake_clock.at(t, a.touch)
    assert a.wait_turn()
    assert fake_clock.now() == keys[-1] + 0.125  # 125 ms after the last keystroke, not before
    assert not fake_clock.events


def test_a_pause_longer_than_idle_gives_the_turn_in_the_pause(fake_clock):
    a = Activity("idle", idle_ms=125, clock=fake_clock)
    t0 = fake_clock.now()
    a.touch()
    fake_clock.at(t0 + 0.0625, a.touch)
    fake_clock.at(t0 + 0.5, a.touch)  # after a pause of 0.4375 s
    assert a.wait_turn()
    assert fake_clock.now() == t0 + 0.1875
    assert len(fake_clock.events) == 1  # the later keystroke is still to come


def test_always_schedule_waits_for_running_completions(fake_clock):
    a = Activity("always", idle_ms=10_000, clock=fake_clock)
    a.begin()
    t_end = fake_clock.now() + 0.375
    seen = []
    fake_clock.at(t_end, lambda: (seen.append(a.cancel.is_set), a.end()))
    assert a.wait_turn()
    assert seen == [True]  # while the completion ran, the flag stayed up: no step started
    assert fake_clock.now() == t_end + ALWAYS_GAP_S  # the short gap, not idle_ms (10 s)


def test_stop_ends_the_wait(fake_clock):
    a = Activity("idle", idle_ms=60_000, clock=fake_clock)
    a.touch()
    t_stop = fake_clock.now() + 0.125
    fake_clock.at(t_stop, a.stop)
    assert a.wait_turn() is False
    assert a.stopped and a.cancel.is_set and fake_clock.now() == t_stop
    with pytest.raises(ValueError):
        Activity("sometimes")


def test_real_clock_still_waits():
    """The default clock is wall time: one short real wait, to keep the real Condition path covered."""
    import time

    a = Activity("idle", idle_ms=50)
    a.touch()
    assert a.wait_turn()
    assert time.monotonic() - a.touched_at >= 0.05  # counted from the touch, on the clock the wait reads
