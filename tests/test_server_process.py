"""The server as an editor runs it, through a real stdio client (RawClient: the bytes, no LSP library): its log
reaches the client as window/logMessage and never stderr (Neovim files each stderr line as [ERROR]),
`--log-file` keeps a copy, and SIGTERM, SIGINT (Ctrl-C) and a closed stdin each end it with exit code 0 and no
traceback."""
from __future__ import annotations

import signal
import time

import pytest

from server_fixtures import tiny_model
from test_server_protocol import RawClient

_ = tiny_model


def log_messages(client: RawClient, until: str, timeout: float = 30.0) -> list[dict]:
    """The window/logMessage params the server sent, up to the first whose text holds `until`."""
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.next(timeout=deadline - time.monotonic(), skip=("$/progress", "window/workDoneProgress/create",
                                                                    "workspace/configuration"))
        assert msg is not None, "the server closed its output: " + client.log()[-2000:]
        if msg.get("method") == "window/logMessage":
            got.append(msg["params"])
            if until in msg["params"]["message"]:
                return got
    raise AssertionError(f"no window/logMessage with {until!r}; got {got}")


def stop(client: RawClient) -> int:
    client.request("shutdown", None, "bye")
    client.answer_to("bye")
    client.notify("exit")
    return client.wait()


def test_log_goes_to_the_client_and_the_file_not_stderr(tiny_model, tmp_path):
    log_file = tmp_path / "ckls.log"
    c = RawClient("--log-file", str(log_file))
    try:
        c.initialize(tiny_model)
        # an INFO record of the engine's thread, and the server's own "ready" (either may come first): both must
        # have been written before shutdown is sent, or the log file may miss the later one
        got = log_messages(c, "ckls.engine: loaded")
        assert got[-1]["type"] == 3  # MessageType.Info
        if not any("model tiny.gguf ready" in m["message"] for m in got):
            log_messages(c, "model tiny.gguf ready")
        assert stop(c) == 0
        assert "INFO" not in c.final_log() and "Traceback" not in c.log(), c.log()
        text = log_file.read_text()
        assert "INFO ckls.engine: loaded" in text and "model tiny.gguf ready" in text
    finally:
        c.close()


def test_log_level_setting_holds_back_info(tiny_model):
    c = RawClient()
    try:
        c.request("initialize", {"processId": None, "rootUri": None, "capabilities": {},
                                 "initializationOptions": {"modelPath": tiny_model, "logLevel": "warning"}}, "init")
        assert "result" in c.answer_to("init")
        c.notify("initialized", {})
        # the server's own message (tell) still comes; the engine's INFO record before it does not
        got = log_messages(c, "model tiny.gguf ready")
        assert not [m for m in got if "ckls.engine" in m["message"]], got
        assert stop(c) == 0 and "INFO" not in c.final_log()
    finally:
        c.close()


def test_an_unwritable_log_file_is_one_line_on_stderr(tiny_model, tmp_path):
    c = RawClient("--log-file", str(tmp_path / "no" / "such" / "dir.log"))
    try:
        c.initialize(tiny_model)  # the server runs anyway
        assert stop(c) == 0
        log = c.wait_log("log_file")
        assert "log_file" in log and "No such file" in log and "Traceback" not in log, log
    finally:
        c.close()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "stdin closed"])
def test_server_exits_cleanly(tiny_model, how):
    c = RawClient()
    try:
        c.initialize(tiny_model)
        log_messages(c, "model tiny.gguf ready")
        if how == "stdin closed":
            c.proc.stdin.close()
        else:
            c.proc.send_signal(getattr(signal, how))
        assert c.wait(20) == 0, c.log()
        assert "Traceback" not in c.final_log() and "Fatal" not in c.log(), c.log()
    finally:
        c.close()


def test_server_exits_cleanly_on_sigterm_while_idle_before_initialize():
    c = RawClient()
    try:
        c.request("workspace/executeCommand", {"command": "ckls.stats"}, 1)
        assert c.answer_to(1)["error"]["code"] == -32002  # imports done, answering: now blocked on stdin
        c.proc.send_signal(signal.SIGTERM)
        assert c.wait(20) == 0, c.log()
        assert "Traceback" not in c.final_log()
    finally:
        c.close()
