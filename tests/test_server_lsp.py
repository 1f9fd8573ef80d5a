"""End-to-end: the real server over stdio (pytest-lsp) with a real synthetic model."""
from __future__ import annotations

import asyncio
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from pygls.exceptions import JsonRpcException
from server_fixtures import (SERVER_CMD, expected_completion, inline_params, open_doc, raw_request, raw_write,
                             start_session, stats, tiny_model, until, wait_model)

pytestmark = pytest.mark.asyncio(loop_scope="module")
_ = tiny_model

SRC = '''import os


def area(width, height):
    """Area of a rectangle."""
    return width * height


def perimeter(width, height):
    total = 
    return total
'''
# Cursor after "total = " (line 9, column 12): text right of the cursor is empty, a single-line completion.
LINE, COL = 9, 12
# no cross-file context here: each test's prompt depends on its own document only (test_completion_context covers it)
OPTIONS = {"memoryEnabled": False, "latencyMs": 20000, "maxTokens": 24, "debounceMs": 0, "debounceMaxMs": 0, "extraTokens": 0}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD), scope="module")
async def client(lsp_client: LanguageClient, tiny_model):
    await start_session(lsp_client, {"modelPath": tiny_model}, OPTIONS)
    yield
    await lsp_client.shutdown_session()


async def test_capabilities_and_model(client: LanguageClient):
    st = await wait_model(client)
    assert st["model"].startswith("loaded"), st["model"]
    assert st["settings"]["latency_ms"] == 20000  # initializationOptions applied
    # the model was loaded under work-done progress: begin ... end
    kinds = [type(v).__name__ for vs in client.progress_reports.values() for v in vs]
    assert "WorkDoneProgressBegin" in kinds and "WorkDoneProgressEnd" in kinds


async def test_inline_completion_equals_greedy_generation(client: LanguageClient, tiny_model):
    await wait_model(client)
    uri = "file:///work/geometry.py"
    open_doc(client, uri, SRC)
    res = await client.text_document_inline_completion_async(inline_params(uri, LINE, COL))
    from ckls.config import Settings

    s = Settings().merged(OPTIONS)[0]
    want = expected_completion(tiny_model, uri, SRC, "python", LINE, COL, s)
    assert want, "the synthetic model should suggest something here"
    assert res is not None
    items = res.items if isinstance(res, types.InlineCompletionList) else res
    assert len(items) == 1
    assert items[0].insert_text == want
    assert items[0].range.start == types.Position(line=LINE, character=COL)
    assert items[0].command.command == "ckls.didAccept"


async def test_typed_ahead_is_served_from_cache(client: LanguageClient):
    await wait_model(client)
    uri = "file:///work/typeahead.py"
    open_doc(client, uri, SRC)
    first = await client.text_document_inline_completion_async(inline_params(uri, LINE, COL))
    text = first.items[0].insert_text
    typed = text[:1]
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line=LINE, character=COL), types.Position(line=LINE, character=COL)),
            text=typed)]))
    before = (await stats(client))["cache_hits"]
    second = await client.text_document_inline_completion_async(inline_params(uri, LINE, COL + len(typed)))
    assert second.items[0].insert_text == text[len(typed):]
    assert (await stats(client))["cache_hits"] == before + 1  # (how fast a hit answers: bench/latency.py)


async def test_accept_telemetry_and_prefetch(client: LanguageClient):
    await wait_model(client)
    uri = "file:///work/accept.py"
    open_doc(client, uri, SRC)
    res = await client.text_document_inline_completion_async(inline_params(uri, LINE, COL))
    item = res.items[0]
    st0 = await stats(client)
    # the editor inserts the suggestion, then runs its command
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line=LINE, character=COL), types.Position(line=LINE, character=COL)),
            text=item.insert_text)]))
    partial = dict(item.command.arguments[0], length=1)  # e.g. accept-word first
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="ckls.didPartiallyAccept", arguments=[partial]))
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=item.command.command, arguments=item.command.arguments))
    st = await stats(client)
    assert st["accepted"] == st0["accepted"] + 1
    assert st["partially_accepted"] == st0["partially_accepted"] + 1
    assert st["accepted_chars"] == st0["accepted_chars"] + 1 + len(item.insert_text)
    assert st["shown"] >= 1 and st["latency_ms"]["n"] >= 1


async def test_overlapping_requests_one_answer_survives(client: LanguageClient, tiny_model):
    await wait_model(client)
    uri = "file:///work/overlap.py"
    open_doc(client, uri, SRC)
    reqs = [asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(uri, LINE, COL,
                                                                                             invoked=False)))
            for _ in range(6)]
    results = await asyncio.gather(*reqs)
    # every request is answered; superseded ones with nothing, the last with the suggestion
    assert results[-1] is not None and results[-1].items[0].insert_text
    assert all(r is None or r.items[0].insert_text == results[-1].items[0].insert_text for r in results)


async def test_did_change_storm_then_exact_text(client: LanguageClient, tiny_model):
    await wait_model(client)
    uri = "file:///work/storm.py"
    open_doc(client, uri, "")
    text, mid = "", []
    for i, ch in enumerate("def f(x):\n    return [x * 2 for x in range(10)]\n" * 20):
        lines = text.split("\n")
        pos = types.Position(line=len(lines) - 1, character=len(lines[-1]))
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=i + 2),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text=ch)]))
        text += ch
        if i % 50 == 0:
            mid.append(client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                                          inline_params(uri, pos.line, pos.character, invoked=False)))
    # a completion at the end sees exactly the typed text: the answer equals greedy generation on that text
    res = await client.text_document_inline_completion_async(inline_params(uri, 40, 0))
    from ckls.config import Settings

    want = expected_completion(tiny_model, uri, text, "python", 40, 0, Settings().merged(OPTIONS)[0])
    assert (res.items[0].insert_text if res else "") == want
    # every request made mid-storm was answered (a list, or nothing for a text that moved on), none failed
    answers = await asyncio.wait_for(asyncio.gather(*mid, return_exceptions=True), 60)
    assert len(answers) == len(mid) > 10
    for a in answers:
        assert a is None or isinstance(a, (list, types.InlineCompletionList)), a


async def test_non_ascii_positions_are_utf16(client: LanguageClient, tiny_model):
    await wait_model(client)
    uri = "file:///work/unicode.py"
    src = 's = "héllo 😀 wörld"\nname = "Zoë 😀"\nx = \n'
    open_doc(client, uri, src)
    # insert after the emoji on line 1: UTF-16 column 14 (code point 13: the emoji counts 2)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line=1, character=14), types.Position(line=1, character=14)),
            text="!")]))
    new_src = 's = "héllo 😀 wörld"\nname = "Zoë 😀!"\nx = \n'
    res = await client.text_document_inline_completion_async(inline_params(uri, 2, 4))
    from ckls.config import Settings

    want = expected_completion(tiny_model, uri, new_src, "python", 2, 4, Settings().merged(OPTIONS)[0])
    got = res.items[0].insert_text if res else ""
    assert got == want


async def test_malformed_params_are_rejected_not_fatal(client: LanguageClient):
    await wait_model(client)
    bad = [(types.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": {"uri": 5}}),
           (types.TEXT_DOCUMENT_INLINE_COMPLETION, {"position": {"line": -1}}),
           (types.TEXT_DOCUMENT_INLINE_COMPLETION, None),
           (types.TEXT_DOCUMENT_COMPLETION, {"textDocument": {}, "position": "x"}),
           (types.WORKSPACE_EXECUTE_COMMAND, {"command": 17})]
    for i, (method, params) in enumerate(bad):
        with pytest.raises(JsonRpcException):
            await raw_request(client, method, params, f"bad-{i}")
    raw_write(client, b"{this is not json")
    raw_write(client, b'{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": 3}}')
    # positions past the end, unknown documents and bad command arguments are answered, not crashed on
    assert await client.text_document_inline_completion_async(inline_params("file:///nope.py", 3, 3)) is None
    uri = "file:///work/short.py"
    open_doc(client, uri, "x = 1\n")
    await client.text_document_inline_completion_async(inline_params(uri, 99, 99))
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line=50, character=0), types.Position(line=1, character=900)),
            text="y = 2\n")]))
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="ckls.didAccept", arguments=[None, 3, {"id": 7, "uri": 1}]))
    st = await stats(client)
    assert st["model"].startswith("loaded")


async def test_ten_megabyte_file(client: LanguageClient):
    await wait_model(client)
    uri = "file:///work/big.py"
    line = "value_%06d = compute(%d, 'some text here')  # comment\n"
    big = "".join(line % (i, i) for i in range(180_000))
    assert len(big) > 10_000_000
    t0 = time.perf_counter()
    open_doc(client, uri, big)
    for k in range(20):
        pos = types.Position(line=90_000, character=k)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=k + 2),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text="z")]))
    res = await client.text_document_inline_completion_async(inline_params(uri, 179_999, 0))
    assert res is None or res.items[0].insert_text
    assert time.perf_counter() - t0 < 30
    st = await stats(client)
    assert st["model"].startswith("loaded")


async def test_five_megabyte_single_line(client: LanguageClient):
    """Minified code: 5 MB on one last line without a line break. Open, keystrokes at its end and a completion
    there all answer within the latency cap (the line splitter used to be quadratic here: 5 MB never returned)."""
    await wait_model(client)
    uri = "file:///work/minified.py"
    text = "x = 1\n" + "y" * 5_000_000
    t0 = time.perf_counter()
    open_doc(client, uri, text)
    for k in range(10):
        pos = types.Position(line=1, character=5_000_000 + k)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=k + 2),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text="z")]))
    res = await client.text_document_inline_completion_async(inline_params(uri, 1, 5_000_010))
    assert res is None or res.items[0].insert_text is not None
    assert time.perf_counter() - t0 < OPTIONS["latencyMs"] / 1e3  # the cap (20 s here): a hang guard only
    st = await stats(client)
    assert st["model"].startswith("loaded") and st["open_documents"] >= 1


async def test_completion_fallback_replaces_the_word(client: LanguageClient):
    await wait_model(client)
    uri = "file:///work/fallback.py"
    open_doc(client, uri, SRC)
    res = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=LINE, character=COL),
        context=types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked)))
    inline = await client.text_document_inline_completion_async(inline_params(uri, LINE, COL))
    assert res is not None and len(res.items) == 1
    assert res.items[0].text_edit.new_text == inline.items[0].insert_text


async def test_settings_change_reloads_and_disables(client: LanguageClient, tiny_model, tmp_path):
    await wait_model(client)
    uri = "file:///work/settings.py"
    open_doc(client, uri, SRC)
    client.set_configuration({"ckls": {"modelPath": tiny_model, "disabledLanguages": ["python"]}})
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await until(client, lambda st: st["settings"]["disabled_languages"] == ["python"])
    assert await client.text_document_inline_completion_async(inline_params(uri, LINE, COL)) is None
    # a model path that does not exist: a message, no crash, completion off
    client.set_configuration({"ckls": {"modelPath": str(tmp_path / "missing.gguf")}})
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await until(client, lambda st: "not found" in st["model"])
    assert any("not found" in m.message for m in client.messages)
    assert await client.text_document_inline_completion_async(inline_params(uri, LINE, COL)) is None
    # back to the real model without a restart
    client.set_configuration({"ckls": {"modelPath": tiny_model}})
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await until(client, lambda st: st["model"].startswith("loaded"))
    res = await client.text_document_inline_completion_async(inline_params(uri, LINE, COL))
    assert res is not None and res.items[0].insert_text


async def test_prefetch_after_accept_serves_the_next_request(client: LanguageClient, tiny_model):
    await wait_model(client)
    uri = "file:///work/prefetch.py"
    open_doc(client, uri, SRC)
    res = await client.text_document_inline_completion_async(inline_params(uri, LINE, COL))
    item = res.items[0]
    n0 = (await stats(client))["prefetched"]
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line=LINE, character=COL), types.Position(line=LINE, character=COL)),
            text=item.insert_text)]))
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=item.command.command, arguments=item.command.arguments))
    st = await until(client, lambda st: st["prefetched"] > n0)
    assert st["prefetched"] == n0 + 1
    end = COL + len(item.insert_text)
    new_src = SRC.replace("    total = \n", "    total = " + item.insert_text + "\n")
    from ckls.config import Settings

    want = expected_completion(tiny_model, uri, new_src, "python", LINE, end, Settings().merged(OPTIONS)[0])
    hits = st["cache_hits"]
    nxt = await client.text_document_inline_completion_async(inline_params(uri, LINE, end))
    assert (nxt.items[0].insert_text if nxt else "") == want
    assert want
    assert (await stats(client))["cache_hits"] == hits + 1  # answered from the prefetch


async def test_no_automatic_suggestion_with_code_right_of_the_cursor(client: LanguageClient):
    await wait_model(client)
    uri = "file:///work/rightside.py"
    open_doc(client, uri, "x = foo(a, b)\n")
    n0 = (await stats(client))["suppressed"]
    assert await client.text_document_inline_completion_async(inline_params(uri, 0, 4, invoked=False)) is None
    assert (await stats(client))["suppressed"] == n0 + 1
    # closing brackets only do not count as code; an explicit request is always answered
    await client.text_document_inline_completion_async(inline_params(uri, 0, 12, invoked=False))
    await client.text_document_inline_completion_async(inline_params(uri, 0, 4, invoked=True))
    assert (await stats(client))["suppressed"] == n0 + 1
