"""ckls.tune.start|stop|status through the real server over stdio (pytest-lsp): work-done progress with loss,
tokens/s and ETA; completions keep flowing while it trains; the new adapter is swapped into the serving model
without a restart (answers then equal greedy generation with that adapter)."""
from __future__ import annotations

import asyncio
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from server_fixtures import (SERVER_CMD, command, expected_completion, inline_params, open_doc, start_session,
                             tiny_model, until, wait_model)
from tune_fixtures import make_repo

pytestmark = pytest.mark.asyncio(loop_scope="module")
_ = tiny_model

SRC = "def f(x):\n    return "
LINE, COL = 1, 11
OPTIONS = {"memoryEnabled": False, "latencyMs": 20000, "maxTokens": 16, "debounceMs": 0, "debounceMaxMs": 0, "extraTokens": 0,
           "tuneSchedule": "always", "tuneSeqLen": 32, "tuneRank": 4, "tuneThreads": 1, "tuneBudgetS": 3,
           "tuneMaxSteps": 5000}


def has_lora() -> bool:
    try:
        import ckls.runtime.lora  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def tune_repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    make_repo(root)
    return str(root)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD), scope="module")
async def client(lsp_client: LanguageClient, tiny_model, tune_repo, tmp_path_factory):
    state = str(tmp_path_factory.mktemp("tune_state"))
    await start_session(lsp_client, {"modelPath": tiny_model, "tuneDir": state}, OPTIONS, root=tune_repo)
    yield
    await lsp_client.shutdown_session()


async def test_status_before_any_round(client: LanguageClient):
    await wait_model(client)
    st = await command(client, "ckls.tune.status")
    assert st["running"] is False and st["summary"] is None and st["adapter_in_use"] is None


@pytest.mark.skipif(not has_lora(), reason="ckls.runtime.lora (the native LoRA trainer) is not in this build")
async def test_train_while_completing_then_hot_swap(client: LanguageClient, tiny_model, tune_repo):
    from ckls.config import Settings

    await wait_model(client)
    uri = f"file://{tune_repo}/pkg/typing_here.py"
    open_doc(client, uri, SRC)
    st = await command(client, "ckls.tune.start")
    assert st["running"] is True
    # completions keep coming while the round trains (each answered, none stuck behind training)
    answered = 0
    t_end = time.monotonic() + 60
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        await client.text_document_inline_completion_async(inline_params(uri, LINE, COL))
        assert time.monotonic() - t0 < 10
        st = await command(client, "ckls.tune.status")
        if not st["running"]:
            break
        # what the editors read (editors/vscode/src/statusText.ts)
        assert st["paused"] is None and isinstance(st["progress_line"], str)
        assert {"phase", "step", "total", "fraction", "message"} <= set(st["progress"]), st["progress"]
        answered += 1  # answered, and training still going
        await asyncio.sleep(0.6)  # a user pausing between requests: training gets the gaps ("always" schedule)
    assert not st["running"], f"the round did not end: {st.get('progress_line')}"
    assert st["error"] is None and st["summary"]["status"] == "trained", st
    assert answered >= 3, answered
    # work-done progress: begin, reports with loss / tok/s / ETA, end
    tokens = [t for t in client.progress_reports if str(t).startswith("ckls-tune-")]
    assert len(tokens) == 1
    seen = client.progress_reports[tokens[0]]
    assert isinstance(seen[0], types.WorkDoneProgressBegin) and isinstance(seen[-1], types.WorkDoneProgressEnd)
    reports = [r.message for r in seen if isinstance(r, types.WorkDoneProgressReport)]
    assert any("loss" in m and "tok/s" in m and "ETA" in m for m in reports), reports[:5]
    # the adapter is in the serving model now, without a restart
    adapter = st["summary"]["adapter"]
    assert adapter
    st = await until(client, lambda st: st["adapter_in_use"], name="ckls.tune.status")
    assert st["adapter_in_use"] == adapter
    s = Settings().merged(OPTIONS)[0]
    want = expected_completion(tiny_model, uri, SRC, "python", LINE, COL, s, adapter=adapter)
    plain = expected_completion(tiny_model, uri, SRC, "python", LINE, COL, s)
    res = await client.text_document_inline_completion_async(inline_params(uri, LINE, COL))
    got = res.items[0].insert_text if res and res.items else ""
    print(f"with adapter {want!r}, base model {plain!r}, server {got!r}")
    assert want != plain  # the trained adapter changes this suggestion, so the check below means something
    assert got == want
    # nothing new: a second start finds the workspace up to date; stop is harmless
    await command(client, "ckls.tune.start")
    st = await until(client, lambda st: not st["running"], name="ckls.tune.status")
    assert st["summary"]["status"] == "up to date"
    st = await command(client, "ckls.tune.stop")
    assert st["running"] is False


@pytest.mark.skipif(not has_lora(), reason="ckls.runtime.lora (the native LoRA trainer) is not in this build")
async def test_enabled_tuning_follows_saves(client: LanguageClient, tiny_model, tune_repo):
    """With tuneEnabled, saving a file starts a round on what changed (one file, plus one replayed)."""
    st = await command(client, "ckls.tune.status")
    if st["rounds"] == 0:
        pytest.skip("runs after test_train_while_completing_then_hot_swap")
    cfg = {"ckls": {"modelPath": tiny_model, "tuneDir": st["state_dir"], "tuneEnabled": True}}
    client.set_configuration(cfg)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=cfg))
    path = f"{tune_repo}/pkg/mod03.py"
    with open(path, "a") as f:
        f.write("\n\ndef saved_later(n):\n    return sum(range(n))\n")
    await until(client, lambda st: st["settings"]["tune_enabled"])  # the configuration pull lands first
    client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=f"file://{path}")))
    st = await until(client, lambda st: st["rounds"] == 2 and not st["running"], 120, "ckls.tune.status")
    last = st["last_round"]
    assert st["rounds"] == 2 and last["fresh"] == 1 and last["replayed"] == 1, st
