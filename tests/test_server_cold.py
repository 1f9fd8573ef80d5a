"""Cold prompts end to end, with the shipped model over stdio: a request on a document just opened is answered
from a reduced prompt, the full prompt is evaluated in the background and its suggestion — exactly what the full
prompt gives — is the answer when asked there again; quickStart off answers in full at once; an edit far away is
prefilled while the user is idle, so the request there is answered from the full prompt. Nothing here is timed:
the latency cap only decides which way a request goes (150 ms cannot hold ~1,500 new tokens on any CPU this model
runs on), and the speed itself is measured by bench/latency.py."""
from __future__ import annotations

import asyncio
import os

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from server_fixtures import (SERVER_CMD, expected_completion, inline_params, open_doc, start_session, stats, until,
                             wait_model)

pytestmark = pytest.mark.asyncio(loop_scope="module")
MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ckls", "models", "default.gguf")
OPTIONS = {"memoryEnabled": False, "modelPath": MODEL, "latencyMs": 150, "maxTokens": 16, "debounceMs": 0, "debounceMaxMs": 0,
           "extraTokens": 0, "prefixTokens": 1200, "suffixTokens": 300, "prefillIdleMs": 100}


def source(n: int = 40) -> str:
    out = ['"""Parts, their prices and the stock of a small shop."""\n'
           'import math\nfrom dataclasses import dataclass\n\n\n']
    for i in range(n):
        out.append(f"@dataclass\nclass Part{i}:\n    name: str\n    price: float\n    count: int = {i % 5 + 1}\n\n"
                   f"    def total(self) -> float:\n        return self.price * self.count\n\n"
                   f"    def describe(self) -> str:\n"
                   f"        return f\"{{self.name}}: {{self.count}} x {{self.price:.2f}}\"\n\n\n")
    return "".join(out)


def cut_at_return(text: str, *starts: int) -> tuple[str, list[tuple[int, int]]]:
    """The text with the first `return self.price * self.count` line from each start cut after `return `, and
    those (line, column) places."""
    lines = text.split("\n")
    places = []
    for line in starts:
        while not lines[line].strip().startswith("return self.price"):
            line += 1
        col = lines[line].index("return ") + len("return ")
        lines[line] = lines[line][:col]
        places.append((line, col))
    return "\n".join(lines), places


def settings(**kw):
    from ckls.config import Settings

    return Settings().merged(dict(OPTIONS, **kw))[0]


@pytest.fixture(scope="module")
def shipped() -> str:
    if not os.path.isfile(MODEL):
        pytest.fail(f"the shipped model is missing: {MODEL}")
    return MODEL


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD), scope="module")
async def client(lsp_client: LanguageClient, shipped):
    await start_session(lsp_client, OPTIONS, OPTIONS)
    yield
    await lsp_client.shutdown_session()


def answer(res) -> tuple[str, str | None]:
    if not res or not res.items:
        return "", None
    item = res.items[0]
    return item.insert_text, item.command.arguments[0]["context"]


async def configure(client, **kw) -> None:
    client.set_configuration({"ckls": dict(OPTIONS, **kw)})
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    want = {k: v for k, v in settings(**kw).as_dict().items() if k in ("quick_start", "latency_ms", "prefill_idle_ms")}
    await until(client, lambda st: all(st["settings"][k] == v for k, v in want.items()), 10)


async def test_cold_request_answers_reduced_then_full(client: LanguageClient, shipped):
    assert (await wait_model(client, 120))["model"].startswith("loaded")
    text, [(line, col)] = cut_at_return(source(), 250)
    uri = "file:///w/shop.py"
    open_doc(client, uri, text)
    st0 = await stats(client)
    first = await client.text_document_inline_completion_async(inline_params(uri, line, col))
    st = await stats(client)
    assert st["answers_reduced"] == st0["answers_reduced"] + 1
    assert st["answers_full"] == st0["answers_full"]
    assert st["engine"]["last"]["context"] == "reduced"
    assert st["engine"]["last"]["n_reduced"] < st["engine"]["last"]["n_prompt"]
    assert answer(first)[1] in (None, "reduced")
    # the full prompt is finished in the background; its suggestion is the answer there from then on
    await until(client, lambda s: not s["engine"]["prefill_pending"]
                and s["full_after_reduced"] == st0["full_after_reduced"] + 1)
    want = expected_completion(shipped, uri, text, "python", line, col, settings())
    assert want
    again = await client.text_document_inline_completion_async(inline_params(uri, line, col))
    assert answer(again) == (want, "full")
    # typing on from there: the prompt is warm, answers come from the full prompt (cache or model)
    n_reduced = (await stats(client))["answers_reduced"]
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line, col), types.Position(line, col)), text="s")]))
    typed = await client.text_document_inline_completion_async(inline_params(uri, line, col + 1, invoked=False))
    assert answer(typed)[1] in ("full", None)
    assert (await stats(client))["answers_reduced"] == n_reduced


async def test_newer_cold_request_takes_over_the_background(client: LanguageClient, shipped):
    await wait_model(client, 120)
    text, [(l1, c1), (l2, c2)] = cut_at_return(source().replace("Part", "Item"), 120, 400)
    uri = "file:///w/items.py"
    open_doc(client, uri, text)
    st0 = await stats(client)
    await client.text_document_inline_completion_async(inline_params(uri, l1, c1))
    # straight away a request far below: a new cold prompt, answered reduced; the background moves to it
    await client.text_document_inline_completion_async(inline_params(uri, l2, c2))
    st = await until(client, lambda s: not s["engine"]["prefill_pending"])
    assert st["answers_reduced"] == st0["answers_reduced"] + 2
    want = expected_completion(shipped, uri, text, "python", l2, c2, settings())
    again = await client.text_document_inline_completion_async(inline_params(uri, l2, c2))
    assert answer(again) == (want, "full") if want else answer(again)[0] == ""


async def test_quick_start_off_answers_in_full(client: LanguageClient, shipped):
    await wait_model(client, 120)
    await configure(client, quickStart=False, latencyMs=20000)  # (a cold prompt overruns 150 ms: all of it)
    try:
        text, [(line, col)] = cut_at_return(source().replace("Part", "Stock"), 300)
        uri = "file:///w/costs.py"
        open_doc(client, uri, text)
        st0 = await stats(client)
        res = await client.text_document_inline_completion_async(inline_params(uri, line, col))
        st = await stats(client)
        assert st["answers_full"] == st0["answers_full"] + 1
        assert st["answers_reduced"] == st0["answers_reduced"]
        want = expected_completion(shipped, uri, text, "python", line, col, settings(quickStart=False, latencyMs=20000))
        assert answer(res) == ((want, "full") if want else ("", None))
    finally:
        await configure(client)


async def test_edit_far_away_is_prefilled_while_idle(client: LanguageClient, shipped):
    await wait_model(client, 120)
    text = source().replace("Part", "Widget")
    uri = "file:///w/widgets.py"
    before = await stats(client)
    open_doc(client, uri, text)
    # opening it: once idle, the prompt's head (here empty: no other files) is evaluated
    st0 = await until(client, lambda s: s["idle_prefills"] == before["idle_prefills"] + 1
                      and not s["engine"]["prefill_pending"])
    # an edit far from the last place (another document): once idle, the prompt at its end is evaluated
    lines = text.split("\n")
    line = next(i for i in range(330, len(lines)) if lines[i].strip().startswith("return self.price"))
    col = lines[line].index("return ") + len("return ")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line, col), types.Position(line, len(lines[line]))), text="")]))
    st = await until(client, lambda s: s["idle_prefills"] > st0["idle_prefills"] and not s["engine"]["prefill_pending"]
                     and s["engine"]["prefills_done"] > st0["engine"]["prefills_done"])
    edited = "\n".join(lines[:line] + [lines[line][:col]] + lines[line + 1:])
    res = await client.text_document_inline_completion_async(inline_params(uri, line, col))
    st1 = await stats(client)
    assert st1["answers_full"] == st["answers_full"] + 1  # warm: no reduced answer needed
    assert st1["answers_reduced"] == st["answers_reduced"]
    assert st1["engine"]["last"]["n_uncached"] < 16
    want = expected_completion(shipped, uri, edited, "python", line, col, settings())
    assert answer(res) == ((want, "full") if want else ("", None))


async def test_idle_prefill_waits_for_quiet_and_skips_bulk_edits(client: LanguageClient, shipped):
    await wait_model(client, 120)
    await configure(client, prefillIdleMs=500)
    try:
        text, [(line, col)] = cut_at_return(source().replace("Part", "Gadget"), 200)
        uri = "file:///w/gadgets.py"
        open_doc(client, uri, text)
        # a far edit followed at once by a request: the request is what counts, no idle prefill happens
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(line, col), types.Position(line, col)), text="s")]))
        n0 = (await stats(client))["idle_prefills"]
        await client.text_document_inline_completion_async(inline_params(uri, line, col + 1))
        # many changes at once (a rename, formatting) far away: nothing is prefilled either
        far = [types.TextDocumentContentChangePartial(range=types.Range(types.Position(l, 0), types.Position(l, 0)),
                                                      text="") for l in (20, 500)]
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3), content_changes=far))
        await asyncio.sleep(0.8)
        assert (await stats(client))["idle_prefills"] == n0
    finally:
        await configure(client)


async def test_reopened_document_is_prefilled_at_its_last_place(client: LanguageClient, shipped):
    await wait_model(client, 120)
    text, [(line, col)] = cut_at_return(source().replace("Part", "Tool"), 300)
    uri, other = "file:///w/tools.py", "file:///w/other_tools.py"
    open_doc(client, uri, text)
    await client.text_document_inline_completion_async(inline_params(uri, line, col))
    await until(client, lambda s: not s["engine"]["prefill_pending"])
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    # work elsewhere fills the main cache with another prompt
    o_text, [(o_line, o_col)] = cut_at_return(source().replace("Part", "Bolt"), 100)
    open_doc(client, other, o_text)
    await client.text_document_inline_completion_async(inline_params(other, o_line, o_col))
    st = await until(client, lambda s: not s["engine"]["prefill_pending"])
    # reopened: once idle, the prompt at the end of the line last worked on is evaluated, so asking there is warm
    open_doc(client, uri, text, version=2)
    st = await until(client, lambda s: s["idle_prefills"] == st["idle_prefills"] + 1
                     and not s["engine"]["prefill_pending"])
    # (a character the earlier suggestion does not start with, so the model answers, not the typed-ahead cache)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line, col), types.Position(line, col)), text="x")]))
    await client.text_document_inline_completion_async(inline_params(uri, line, col + 1))
    st1 = await stats(client)
    assert st1["answers_full"] == st["answers_full"] + 1
    assert st1["answers_reduced"] == st["answers_reduced"]
    assert st1["engine"]["last"]["n_uncached"] < 16
