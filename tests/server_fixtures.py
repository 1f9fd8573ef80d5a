"""Shared pieces of the language-server tests: a synthetic model on disk, client capabilities with inline
completion, and a pytest-lsp client connected to `python -m ckls serve` over stdio."""
from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest
from lsprotocol import types

SERVER_CMD = [sys.executable, "-m", "ckls", "serve", "--threads", "1"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    from ckls.runtime.synth import synth_model

    path = tmp_path_factory.mktemp("models") / "tiny.gguf"
    synth_model(path, arch="qwen2", shape="tiny", type="f32", seed=0)
    return str(path)


def capabilities() -> types.ClientCapabilities:
    """What an editor with inline completion (VS Code) declares; pytest-lsp's canned ones lack it."""
    return types.ClientCapabilities(
        workspace=types.WorkspaceClientCapabilities(configuration=True, workspace_folders=True,
                                                    did_change_configuration=types.DidChangeConfigurationClientCapabilities(
                                                        dynamic_registration=False)),
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
            inline_completion=types.InlineCompletionClientCapabilities(dynamic_registration=False),
            completion=types.CompletionClientCapabilities()),
        window=types.WindowClientCapabilities(work_done_progress=True, show_message=types.ShowMessageRequestClientCapabilities()),
        general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]))


def register_client_handlers(client) -> None:
    """pytest-lsp's client answers neither workspace/applyEdit nor window/showMessageRequest."""

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams):
        return types.ApplyWorkspaceEditResult(applied=False, failure_reason="test client")

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def show_message_request(params: types.ShowMessageRequestParams):
        return None


def init_params(options: dict | None = None, root: str | None = None) -> types.InitializeParams:
    return types.InitializeParams(capabilities=capabilities(), initialization_options=options or {},
                                  root_uri=f"file://{root}" if root else None)


async def start_session(client, settings: dict, options: dict | None = None, root: str | None = None) -> None:
    """A module's client fixture begins here: the handlers pytest-lsp lacks, workspace/configuration answered with
    {"ckls": settings}, the session initialized with these initializationOptions (and workspace root)."""
    register_client_handlers(client)
    client.set_configuration({"ckls": settings})
    await client.initialize_session(init_params(options, root))


async def command(client, name: str):
    """workspace/executeCommand without arguments: the server's reply."""
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command=name))


async def stats(client) -> dict:
    return await command(client, "ckls.stats")


async def until(client, pred, timeout: float = 90.0, name: str = "ckls.stats") -> dict:
    """Polls a command (ckls.stats) until pred(its reply) holds; that reply. The timeout only ends a hang."""
    t0 = time.monotonic()
    while True:
        st = await command(client, name)
        if pred(st):
            return st
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{name} never showed the state waited for: {st}")
        await asyncio.sleep(0.05)


async def wait_model(client, timeout: float = 60.0) -> dict:
    """Polls ckls.stats until the model finished loading (or failed); returns the stats."""
    return await until(client, lambda st: st["model"] not in ("loading", "not loaded"), timeout)


def open_doc(client, uri: str, text: str, language_id: str = "python", version: int = 1) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=version, text=text)))


def inline_params(uri: str, line: int, character: int, invoked: bool = True) -> types.InlineCompletionParams:
    kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    return types.InlineCompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                        position=types.Position(line=line, character=character),
                                        context=types.InlineCompletionContext(trigger_kind=kind))


def expected_completion(model_path: str, uri: str, text: str, language_id: str, line: int, character: int,
                        settings=None, adapter: str | None = None, retrieval=None) -> str:
    """What the server must answer, computed in this process: the same context and prompt, the runtime's plain
    greedy generation of max_tokens tokens (no early stop), then post-processing. `adapter`: a LoRA GGUF the
    model runs with; `retrieval`: the windows of the workspace's index (completion.retrieval.Retrieval)."""
    from ckls.config import Settings
    from ckls.completion.context import ExtraContext, build_context
    from ckls.completion.documents import Document
    from ckls.completion.engine import decode_utf8
    from ckls.completion.heal import healing
    from ckls.completion.postprocess import Post, decide_shape
    from ckls.completion.prompt import PromptBuilder
    from ckls.runtime import load_model
    from ckls.server.state import uri_path

    s = settings or Settings()
    doc = Document(uri, text, language_id)
    extra = ExtraContext()
    extra.note_chunk(uri, uri_path(uri), doc.lines[:64], 0)
    extra.index(uri, language_id, text)
    before, after, first, ln, col = doc.window(line, character, s.prefix_tokens * 6, s.suffix_tokens * 6)
    ctx = build_context(uri, language_id, before, after, ln, col, first, extra, s.extra_tokens * 3, retrieval)
    with load_model(model_path, n_ctx=s.n_ctx, n_threads=1) as model:
        if adapter:
            from ckls.runtime.lora import LoraAdapter

            model.set_adapter(LoraAdapter.from_gguf(model, adapter))
        b = PromptBuilder(model.tokenizer, s.prefix_tokens, s.suffix_tokens, s.extra_tokens, s.fim_order)
        prompt = b.build(ctx)
        heal = healing(model.tokenizer, prompt.heal)
        ids = []
        for i in model.generate(prompt.tokens, s.max_tokens + (1 if prompt.heal else 0), temperature=0.0,
                                stop_ids=b.fmt.stop_ids, constrain=heal.constrain):
            ids.append(i)
            heal.feed(model.tokenizer.token_bytes(i))
        raw = decode_utf8(heal.strip(b"".join(model.tokenizer.token_bytes(i) for i in ids)))
    return Post(decide_shape(ctx, s.multiline), s.max_lines).finalize(raw)


__all__ = ["raw_request", "raw_write", "SERVER_CMD", "tiny_model", "capabilities", "register_client_handlers", "init_params", "wait_model",
           "open_doc", "inline_params", "expected_completion", "os"]


async def raw_request(client, method: str, params, msg_id: str, timeout: float = 30.0):
    """Sends a request as raw JSON (the typed client refuses malformed params); returns the result or raises
    the error the server answered with."""
    import asyncio
    import json
    from concurrent.futures import Future

    fut: Future = Future()
    client.protocol._request_futures[msg_id] = fut
    client.protocol._result_types[msg_id] = None
    raw_write(client, json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode())
    return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)


def raw_write(client, body: bytes) -> None:
    client.protocol.writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
