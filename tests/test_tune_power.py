"""Rounds the server starts on its own wait while the computer runs on battery: the power probe on sysfs trees laid
out as Linux lays them out (this machine has no battery), the scheduler's pause, a paused round that neither scans
nor trains, and the server's status over stdio."""
from __future__ import annotations

import os

import pytest

from ckls.tune import power
from ckls.tune.scheduler import Activity


def supply(root, name: str, **files: str) -> None:
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    for k, v in files.items():
        with open(os.path.join(d, k), "w") as f:
            f.write(v + "\n")


def battery_tree(root, discharging: bool) -> str:
    supply(root, "AC", type="Mains", online="0" if discharging else "1")
    supply(root, "BAT0", type="Battery", scope="System", status="Discharging" if discharging else "Charging")
    return str(root)


@pytest.mark.parametrize("layout, expected", [
    ({"AC": dict(type="Mains", online="1"), "BAT0": dict(type="Battery", status="Charging")}, False),
    ({"AC": dict(type="Mains", online="0"), "BAT0": dict(type="Battery", status="Discharging")}, True),
    ({"BAT1": dict(type="Battery", status="Discharging")}, True),                       # no mains entry at all
    ({"BAT0": dict(type="Battery", status="Full")}, False),
    ({"ucsi-source-psy-USBC000:001": dict(type="USB", online="1"),
      "BAT0": dict(type="Battery", status="Discharging")}, False),                      # USB-C charger online
    ({"hidpp_battery_0": dict(type="Battery", scope="Device", status="Discharging")}, None),  # a mouse
    ({"AC": dict(type="Mains", online="0")}, None),                                     # a desktop's supply
    ({"BAT0": dict(type="Battery", status="\x00\xff garbage")}, None),
    ({"odd": dict()}, None),                                                            # no files at all
    ({}, None),
])
def test_linux_sysfs(tmp_path, layout, expected):
    for name, files in layout.items():
        supply(tmp_path, name, **files)
    assert power.linux(str(tmp_path)) is expected


def test_missing_tree_and_this_machine(tmp_path):
    assert power.linux(str(tmp_path / "absent")) is None
    assert power.on_battery() in (True, False, None)  # the real probe of this platform never raises


def test_scheduler_waits_on_battery_and_wakes_on_mains_or_stop(fake_clock):
    state = {"battery": True}
    probes, seen = [], []
    act = Activity("always", power=lambda: probes.append(1) or state["battery"], recheck_s=0.0625, clock=fake_clock)
    t0 = fake_clock.now()

    def mains():
        seen.append((act.paused, len(probes)))
        state["battery"] = False

    fake_clock.at(t0 + 0.3125, mains)
    assert act.wait_turn() is True
    assert seen == [("on battery", 5)]  # it looked again every recheck_s (0, 1/16 .. 4/16 s), still waiting
    assert act.paused is None and act.waited_s >= 0.3125

    state["battery"] = True
    act2 = Activity("always", power=lambda: state["battery"], recheck_s=60, clock=fake_clock)
    t_stop = fake_clock.now() + 0.125
    fake_clock.at(t_stop, act2.stop)
    assert act2.wait_turn() is False
    assert fake_clock.now() == t_stop  # no waiting out the 60-s recheck

    act3 = Activity("always", power=lambda: True, recheck_s=60, clock=fake_clock)
    fake_clock.at(fake_clock.now() + 0.125, act3.allow_battery)  # the user started the round by hand
    assert act3.wait_turn() is True and act3.paused is None


def test_round_paused_on_battery_does_nothing_until_mains(models, tmp_path, repo, fake_clock):
    pytest.importorskip("ckls.runtime.lora", reason="ckls.runtime.lora (the native LoRA trainer) is not in this build")
    from ckls.tune.loop import TuneOptions, Tuner

    root = repo
    state = {"battery": True}
    # (a recheck of 1/16 s: simulated times stay exact in binary)
    act = Activity("always", power=lambda: state["battery"], recheck_s=0.0625, clock=fake_clock)
    seen, at_mains = [], []

    def mains():  # half a second on battery (simulated): what the round did meanwhile, then the charger goes in
        at_mains.append(([p.phase for p in seen], os.path.exists(tmp_path / "state")))
        state["battery"] = False

    fake_clock.at(fake_clock.now() + 0.5, mains)
    t = Tuner(str(root), models.get("qwen2", "tiny", "f32"),
              TuneOptions(rank=4, alpha=8.0, seq_len=32, max_steps=3, eval_every=3, threads=1, layout="pieces",
                          heldout_windows=2), str(tmp_path / "state"), act, on_progress=seen.append)
    out = t.run()
    assert at_mains == [(["waiting"], False)]  # waiting, not even scanned
    assert "on battery" in seen[0].message
    assert out.status == "trained" and out.steps == 3