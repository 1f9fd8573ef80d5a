"""tune_* settings in the common schema: every source spells them the same way, and values are checked."""
import dataclasses

import pytest

from ckls.config import SCHEMA, Settings, SettingsError, add_cli_args, from_cli, load_toml
from ckls.tune.loop import TuneOptions


def test_schema_and_dataclass_agree():
    fields = {f.name: f.default for f in dataclasses.fields(Settings) if f.default is not dataclasses.MISSING}
    for s in SCHEMA:
        if s.type is not list:
            assert fields[s.name] == s.default, s.name


def test_every_source(tmp_path):
    import argparse

    (tmp_path / "ckls.toml").write_text('[ckls]\ntune_rank = 4\ntuneSchedule = "always"\ntune_lr = 1e-3\n')
    s = Settings().merged(load_toml(tmp_path / "ckls.toml"), strict=True)[0]
    assert (s.tune_rank, s.tune_schedule, s.tune_lr) == (4, "always", 1e-3)
    s = s.merged({"tuneEnabled": "true", "tuneAlpha": 8, "tuneBudgetS": "120"}, strict=True)[0]  # LSP spelling
    assert s.tune_enabled is True and s.tune_alpha == 8.0 and s.tune_budget_s == 120
    ap = argparse.ArgumentParser()
    add_cli_args(ap)
    args = ap.parse_args(["--tune-rank", "16", "--tune-alpha", "32.5", "--tune-schedule", "idle",
                          "--tune-use-adapter", "off"])
    s = s.merged(from_cli(args), strict=True)[0]
    assert (s.tune_rank, s.tune_alpha, s.tune_schedule, s.tune_use_adapter) == (16, 32.5, "idle", False)
    o = TuneOptions.from_settings(s)
    assert (o.rank, o.alpha, o.lr, o.budget_s) == (16, 32.5, 1e-3, 120.0)


@pytest.mark.parametrize("bad", [{"tuneRank": 0}, {"tuneLr": "fast"}, {"tuneAlpha": True}, {"tuneLr": 2.0},
                                 {"tuneSchedule": "sometimes"}, {"tuneAlpha": float("nan")}])
def test_bad_values(bad):
    with pytest.raises(SettingsError):
        Settings().merged(bad, strict=True)
    s, problems = Settings().merged(bad)
    assert problems and s == Settings()
