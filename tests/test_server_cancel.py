"""Cancellation end-to-end: $/cancelRequest is answered at once and a newer request (for another document) stops
the model mid-prompt; what runs next is exact (the KV cache is not left holding half-evaluated positions)."""
from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient

from server_fixtures import SERVER_CMD, expected_completion, inline_params, open_doc, start_session, stats, wait_model

pytestmark = pytest.mark.asyncio(loop_scope="module")
OPTIONS = {"memoryEnabled": False, "latencyMs": 60000, "maxTokens": 16, "debounceMs": 0, "debounceMaxMs": 0, "extraTokens": 0,
           "prefixTokens": 1200, "suffixTokens": 300}
# ~1500 prompt tokens: long enough that a cancel sent a few milliseconds later lands inside the prompt's forward
LONG = "".join(f"def function_{i}(alpha, beta):\n    return alpha * {i} + beta - {i % 7}\n\n" for i in range(400))
SHORT = "def add(a, b):\n    return a + b\n\nresult = \n"


@pytest.fixture(scope="module")
def mini_model(tmp_path_factory) -> str:
    from ckls.runtime.synth import synth_model

    path = tmp_path_factory.mktemp("models") / "mini.gguf"
    synth_model(path, arch="llama", shape="mini", type="f32", seed=1)
    return str(path)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD), scope="module")
async def client(lsp_client: LanguageClient, mini_model):
    await start_session(lsp_client, {"modelPath": mini_model}, OPTIONS)
    yield
    await lsp_client.shutdown_session()


def settings():
    from ckls.config import Settings

    return Settings().merged(OPTIONS)[0]


async def test_cancel_request_is_answered_and_next_answer_is_exact(client: LanguageClient, mini_model):
    st = await wait_model(client)
    assert st["model"].startswith("loaded")
    open_doc(client, "file:///w/long.py", LONG)
    open_doc(client, "file:///w/short.py", SHORT)
    n0 = (await stats(client))["cancelled"]
    fut = client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                       inline_params("file:///w/long.py", 600, 0), msg_id="long-1")
    await asyncio.sleep(0.005)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="long-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wrap_future(fut)
    assert (await stats(client))["cancelled"] == n0 + 1
    res = await client.text_document_inline_completion_async(inline_params("file:///w/short.py", 3, 9))
    want = expected_completion(mini_model, "file:///w/short.py", SHORT, "python", 3, 9, settings())
    assert want
    assert (res.items[0].insert_text if res else "") == want


async def test_newer_request_supersedes_older(client: LanguageClient, mini_model):
    await wait_model(client)
    open_doc(client, "file:///w/long2.py", LONG.replace("alpha", "gamma"))
    open_doc(client, "file:///w/short2.py", SHORT)
    n0 = (await stats(client))["superseded"]
    old = client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                       inline_params("file:///w/long2.py", 600, 0))
    await asyncio.sleep(0.005)
    new = await client.text_document_inline_completion_async(inline_params("file:///w/short2.py", 3, 9))
    assert await asyncio.wrap_future(old) is None  # superseded: answered with nothing
    assert (await stats(client))["superseded"] == n0 + 1
    want = expected_completion(mini_model, "file:///w/short2.py", SHORT, "python", 3, 9, settings())
    assert want
    assert (new.items[0].insert_text if new else "") == want
