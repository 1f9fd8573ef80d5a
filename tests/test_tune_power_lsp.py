"""The real server over stdio on a laptop running on battery (a sysfs tree laid out as Linux lays it out, through
CKLS_POWER_SUPPLY_DIR): the round tuneEnabled starts waits, says why in ckls.tune.status, and runs once the user
starts it by hand."""
from __future__ import annotations

import asyncio
import os
import tempfile

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from server_fixtures import SERVER_CMD, command, start_session, tiny_model, until, wait_model
from test_tune_power import battery_tree
from tune_fixtures import make_repo

pytestmark = pytest.mark.asyncio(loop_scope="module")
_ = tiny_model
pytest.importorskip("ckls.runtime.lora", reason="ckls.runtime.lora (the native LoRA trainer) is not in this build")

POWER = battery_tree(tempfile.mkdtemp(prefix="ckls-power-"), discharging=True)
OPTIONS = {"latencyMs": 20000, "maxTokens": 16, "tuneEnabled": True, "tuneSchedule": "always", "tuneSeqLen": 32,
           "tuneRank": 4, "tuneThreads": 1, "tuneBudgetS": 2, "tuneMaxSteps": 20}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD,
                                              server_env=dict(os.environ, CKLS_POWER_SUPPLY_DIR=POWER)),
                    scope="module")
async def client(lsp_client: LanguageClient, tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    make_repo(root)
    state = str(tmp_path_factory.mktemp("tune_state") / "s")
    await start_session(lsp_client, {"modelPath": tiny_model, "tuneDir": state, **OPTIONS}, OPTIONS, root=str(root))
    yield
    await lsp_client.shutdown_session()


async def test_automatic_round_waits_for_mains_power_until_started_by_hand(client: LanguageClient):
    await wait_model(client)
    st = await until(client, lambda st: st["paused"], name="ckls.tune.status")
    assert st["running"] and st["paused"] == "on battery" and "on battery" in st["progress_line"], st
    await asyncio.sleep(1.0)
    st = await command(client, "ckls.tune.status")
    assert st["running"] and st["rounds"] == 0 and not os.path.exists(st["state_dir"])  # nothing scanned
    await command(client, "ckls.tune.start")  # the user asks: it runs on battery
    st = await until(client, lambda st: not st["running"], 120, "ckls.tune.status")
    assert st["paused"] is None and st["summary"]["status"] == "trained" and st["summary"]["steps"] > 0, st
