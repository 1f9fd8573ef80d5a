"""A configuration change that arrives while the server starts (Neovim sends one right after `initialized`) loads
the model once, not twice: the server compares the settings with those of the load begun (marked before its first
await), not with the settings before the change. (The engine would skip a second read of the same file, but the
second load still cleared the cache, cancelled work and told the user twice.)"""
from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from server_fixtures import SERVER_CMD, start_session, stats, tiny_model, wait_model

pytestmark = pytest.mark.asyncio(loop_scope="module")
_ = tiny_model


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD), scope="module")
async def client(lsp_client: LanguageClient, tiny_model):
    await start_session(lsp_client, {"modelPath": tiny_model}, {"latencyMs": 20000})
    lsp_client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    yield
    await lsp_client.shutdown_session()


async def test_a_change_during_start_loads_the_model_once(client: LanguageClient):
    st = await wait_model(client)
    assert st["model"].startswith("loaded"), st["model"]
    # both handlers have run once the server answers a request sent after them; give the second load time to show
    for _ in range(20):
        await stats(client)
        await asyncio.sleep(0.05)
    ready = [m.message for m in client.log_messages if "model" in m.message and "ready" in m.message]
    assert len(ready) == 1, ready
