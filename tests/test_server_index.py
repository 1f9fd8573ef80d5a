"""The workspace index through the real server over stdio: built in the background with work-done progress when
`retrieval` is on, kept in the cache folder (never in the workspace), and the served suggestion is the one whose
prompt leads with the windows the index retrieves (computed here from an index of the same files)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from server_fixtures import (SERVER_CMD, command, expected_completion, inline_params, open_doc, start_session,
                             tiny_model, wait_model)
from test_index import synthetic_repo

pytestmark = pytest.mark.asyncio(loop_scope="module")
_ = tiny_model
OPTIONS = {"latencyMs": 20000, "maxTokens": 12, "debounceMs": 0, "debounceMaxMs": 0, "retrieval": True,
           "prefillIdleMs": 0, "memoryEnabled": True}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ws"))
    synthetic_repo(root, 30, seed=8)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    WORKSPACE_FILES.update(_listing(root))
    return root


WORKSPACE_FILES: dict[str, int] = {}


def _listing(root: str) -> dict[str, int]:
    out = {}
    for d, dirs, fs in os.walk(root):
        dirs[:] = [x for x in dirs if x != ".git"]
        for f in fs:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = os.path.getsize(p)
    return out


CACHE = tempfile.mkdtemp(prefix="ckls-test-cache-")  # the server's ~/.cache: where its index must land


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD,
                                              server_env={**os.environ, "XDG_CACHE_HOME": CACHE}), scope="module")
async def client(lsp_client: LanguageClient, tiny_model, workspace):
    await start_session(lsp_client, {"modelPath": tiny_model}, OPTIONS, root=workspace)
    yield
    await lsp_client.shutdown_session()


async def wait_index(client, timeout: float = 120.0) -> dict:
    t0 = time.monotonic()
    while True:
        st = await command(client, "ckls.stats")
        if st["index"].startswith(("ready", "build failed", "unavailable")):
            return st
        assert time.monotonic() - t0 < timeout, st["index"]
        await asyncio.sleep(0.1)


async def test_the_index_is_built_with_progress_and_serves_the_prompt(client: LanguageClient, tiny_model, workspace,
                                                                      tmp_path):
    from ckls.config import Settings, workspace_state_dir
    from ckls.completion.retrieval import Retrieval
    from ckls.index import Index

    await wait_model(client)
    st = await wait_index(client)
    assert st["index"].startswith("ready: 30 files"), st["index"]
    begins = [v for vs in client.progress_reports.values() for v in vs if isinstance(v, types.WorkDoneProgressBegin)]
    assert any("indexing" in b.title for b in begins)
    # nothing written into the workspace: the index lives in the cache folder
    assert os.path.isdir(workspace_state_dir("index", workspace).replace(os.path.expanduser("~/.cache"), CACHE, 1)) \
        or any("index" in d for d in os.listdir(os.path.join(CACHE, "ckls")))
    assert _listing(workspace) == WORKSPACE_FILES
    path = os.path.join(workspace, "pkg2", "mod_2.py")
    text = open(path).read()
    uri = "file://" + path
    open_doc(client, uri, text)
    n = min(24, text.count("\n") - 1)
    res = await client.text_document_inline_completion_async(inline_params(uri, n, 4))
    got = res.items[0].insert_text if res and res.items else ""
    ix = Index(workspace, tmp_path / "state")
    ix.build()
    want = expected_completion(tiny_model, uri, text, "python", n, 4, Settings().merged(OPTIONS)[0],
                               retrieval=Retrieval(ix))
    assert got == want
    assert Retrieval(ix).retrieve(path, "".join(text.splitlines(keepends=True)[:n]), n)  # windows were in it


async def test_the_token_memory_is_filled_from_the_index_and_follows_saves(client: LanguageClient, workspace):
    await wait_index(client)
    t0 = time.monotonic()
    while (st := await command(client, "ckls.stats"))["memory"] is None or st["memory"]["files"] < 30:
        assert time.monotonic() - t0 < 60, st["memory"]
        await asyncio.sleep(0.1)
    before = st["memory"]["tokens"]
    path = os.path.join(workspace, "pkg4", "mod_4.py")
    uri = "file://" + path
    text = open(path).read()
    open_doc(client, uri, text)
    extra = "".join(f"def saved_function_{i}(argument_{i}):\n    return argument_{i} * {i}\n\n" for i in range(40))
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text + extra)]))
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri)))
    while (st := await command(client, "ckls.stats"))["memory"]["tokens"] <= before:
        assert time.monotonic() - t0 < 60, st["memory"]
        await asyncio.sleep(0.1)
    assert st["memory"]["files"] == 30
    # a completion in the open document puts it in the memory's document slot, under the key its saved copy has
    # (which the memory hides meanwhile: memory.hold_document)
    await client.text_document_inline_completion_async(inline_params(uri, 3, 4))
    st = await command(client, "ckls.stats")
    assert st["memory"]["document"] == "pkg4/mod_4.py" and st["memory"]["files"] == 30
