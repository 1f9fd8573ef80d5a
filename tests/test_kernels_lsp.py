"""ckls.generateKernel / verifyKernel / applyKernel end to end: the real server over stdio (pytest-lsp), the real
SDK inside it talking to the local Messages API server, questions through window/showMessageRequest,
$/progress reports, the judge's verdict, and the WorkspaceEdit sent back with workspace/applyEdit."""
from __future__ import annotations

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from kernels_fixtures import AXPY_OK, CORPUS
from messages_api_server import MessagesAPIServer, tool
from server_fixtures import SERVER_CMD, init_params, open_doc, tiny_model

pytestmark = pytest.mark.asyncio(loop_scope="module")
_ = tiny_model
ASKED: list[str] = []
EDITS: list = []
WS = {}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD), scope="module")
async def client(lsp_client: LanguageClient, tiny_model, tmp_path_factory):
    ws = tmp_path_factory.mktemp("proj")
    (ws / "ops.py").write_text((CORPUS / "axpy" / "original.py").read_text())
    WS["root"] = ws

    @lsp_client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def ask(params: types.ShowMessageRequestParams):
        ASKED.append(params.message)
        return params.actions[0]  # the first choice: f32 for the dtype, scalar for `a`

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams):
        EDITS.append(params.edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    lsp_client.set_configuration({"ckls": {"modelPath": tiny_model}})
    await lsp_client.initialize_session(init_params({"maxTokens": 8}, root=str(ws)))
    yield
    await lsp_client.shutdown_session()


async def test_generate_verify_apply(client: LanguageClient):
    ws = WS["root"]
    uri = (ws / "ops.py").as_uri()
    open_doc(client, uri, (ws / "ops.py").read_text())
    script = [tool("compile", "Plain loop first.", source=AXPY_OK), tool("submit_kernel", source=AXPY_OK)]
    with MessagesAPIServer(script) as api:
        res = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="ckls.generateKernel", arguments=[{
                "uri": uri, "position": {"line": 5, "character": 8}, "lang": "c", "baseUrl": api.url,
                "apiKey": api.api_key, "maxTurns": 4, "verifyBudget": "quick"}]))
    assert api.errors == []
    assert res["verdict"] == "PASS", res["report"]
    assert res["stop"] == "submitted" and res["source"] == AXPY_OK and res["usage"]["output_tokens"] == 80
    assert "axpy: **PASS**" in res["report"]
    assert any("Element type" in m for m in ASKED) and any("`a`" in m for m in ASKED)
    reports = [v for vs in client.progress_reports.values() for v in vs]
    msgs = [getattr(v, "message", None) or "" for v in reports]
    assert any(isinstance(v, types.WorkDoneProgressBegin) for v in reports)
    assert any("turn 1: Plain loop first." in m for m in msgs) and any("verifying" in m for m in msgs)
    assert api.api_key not in " ".join(msgs)

    ver = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="ckls.verifyKernel", arguments=[{"uri": uri, "function": "axpy", "lang": "c", "budget": "quick",
                                                 "answers": {"dtype": "f32", "kind:a": "scalar"},
                                                 "source": AXPY_OK.replace("i < n;", "i + 1 < n;")}]))
    assert ver["verdict"] == "FAIL" and "wrong_result" in ver["report"]

    edit = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="ckls.applyKernel", arguments=[{"id": res["id"], "apply": True}]))
    uris = [c.get("uri") or c["textDocument"]["uri"] for c in edit["documentChanges"]]
    assert (ws / "ops_axpy_ckls.c").as_uri() in uris and uri in uris
    assert len(EDITS) == 1 and len(EDITS[0].document_changes) == len(edit["documentChanges"])


async def test_apply_unknown_id_is_an_error(client: LanguageClient):
    from pygls.exceptions import JsonRpcException
    with pytest.raises(JsonRpcException, match="ckls.generateKernel first"):
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="ckls.applyKernel", arguments=[{"id": "nope"}]))


async def test_cancel_through_work_done_progress(client: LanguageClient):
    import asyncio

    ws = WS["root"]
    uri = (ws / "ops.py").as_uri()
    before = set(client.progress_reports)
    # the second answer streams on until the agent stops reading: the editor cancels while the model "thinks"
    with MessagesAPIServer([tool("compile", source=AXPY_OK), {"hold": True},
                            tool("submit_kernel", source=AXPY_OK)]) as api:
        fut = asyncio.ensure_future(client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="ckls.generateKernel", arguments=[{
                "uri": uri, "function": "axpy", "lang": "c", "baseUrl": api.url, "apiKey": api.api_key,
                "answers": {"dtype": "f32", "kind:a": "scalar"}, "verifyBudget": "quick"}])))
        token = None  # the command's progress (the model's load may have begun one of its own meanwhile)
        for _ in range(1200):
            token = next((t for t in client.progress_reports if t not in before and any(
                "compile ->" in (getattr(v, "message", "") or "") for v in client.progress_reports[t])), None)
            if token is not None:
                break
            await asyncio.sleep(0.05)
        assert token is not None, "no progress of the first turn's compile"
        client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        res = await fut
    assert res["stop"] == "cancelled" and res["verdict"] == "NONE" and res["report"] is None
    assert len(api.requests) <= 2


async def test_generate_masks_secrets_in_progress_and_result(client: LanguageClient):
    """A key given as the command's apiKey (not in the environment) and a password in the workspace's .env,
    leaked by the model's text, an #include of the .env and the submission's source and notes: neither reaches
    $/progress, the command's result or the requests sent to the API."""
    import json
    import secrets

    ws = WS["root"]
    uri = (ws / "ops.py").as_uri()
    key, pw = "sk-ant-api03-" + secrets.token_hex(20), "Q7x" + secrets.token_hex(12)
    (ws / ".env").write_text(f"DB_PASSWORD={pw}\n")
    script = [tool("compile", f"Using {key}.", source=f'#include "{ws / ".env"}"\n' + AXPY_OK),
              tool("submit_kernel", source=f"/* {key} */\n" + AXPY_OK, notes=f"password {pw}")]
    before = set(client.progress_reports)
    try:
        with MessagesAPIServer(script, api_key=key) as api:
            res = await client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="ckls.generateKernel", arguments=[{
                    "uri": uri, "function": "axpy", "lang": "c", "baseUrl": api.url, "apiKey": key, "maxTurns": 3,
                    "answers": {"dtype": "f32", "kind:a": "scalar"}, "verifyBudget": "quick"}]))
    finally:
        (ws / ".env").unlink()
    msgs = [getattr(v, "message", None) or "" for t, vs in client.progress_reports.items() if t not in before
            for v in vs]
    blob = json.dumps(res) + "\n".join(msgs) + json.dumps([r["body"] for r in api.requests])
    assert api.errors == [] and res["stop"] == "submitted", res["error"]
    assert key not in blob and pw not in blob
    assert any("[redacted: ANTHROPIC_API_KEY]" in m for m in msgs)
    assert "[redacted: .env DB_PASSWORD]" in res["notes"] and "[redacted: ANTHROPIC_API_KEY]" in res["source"]
    assert res["verdict"] == "PASS", res["report"]
