"""The JSON-RPC layer against a hostile client: a raw stdio client (no LSP library between the test and the
bytes) talking to the real server process. Every request gets an answer, garbage is logged (never shown to the
user as a pop-up), a huge Content-Length is refused without allocating it, and the process keeps serving."""
from __future__ import annotations

import json
import queue
import subprocess
import threading
import time

import pytest

from server_fixtures import SERVER_CMD, tiny_model

_ = tiny_model
INIT = {"processId": None, "rootUri": None, "capabilities": {}}


class RawClient:
    """The server as a subprocess; messages it sends are read by a thread into a queue."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(SERVER_CMD + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.inbox: queue.Queue = queue.Queue()
        self.stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        self._stderr_reader = threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True)
        self._stderr_reader.start()

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self.inbox.put(None)
                    return
                if not line.strip():
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            self.inbox.put(json.loads(out.read(length)))

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, obj) -> None:
        body = json.dumps(obj).encode()
        self.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params=None, msg_id=None) -> None:
        self.send({"jsonrpc": "2.0", "id": msg_id if msg_id is not None else method, "method": method,
                   "params": params})

    def notify(self, method: str, params=None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def next(self, timeout: float = 20.0, skip=("window/logMessage", "$/progress", "window/workDoneProgress/create",
                                              "workspace/configuration")):
        """The next message from the server that is not routine chatter (log lines, progress)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            if msg is None or msg.get("method") not in skip:
                return msg
            if "id" in msg:  # a request to the client: answer it so the server goes on
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})

    def answer_to(self, msg_id, timeout: float = 20.0) -> dict:
        while True:
            msg = self.next(timeout)
            assert msg is not None, "the server closed its output: " + self.log()[-2000:]
            assert msg.get("method") != "window/showMessage", f"a pop-up for protocol garbage: {msg}"
            if msg.get("id") == msg_id and "method" not in msg:
                return msg

    def initialize(self, model: str) -> None:
        self.request("initialize", dict(INIT, initializationOptions={"modelPath": model}), "init")
        assert "result" in self.answer_to("init")
        self.notify("initialized", {})

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def log(self) -> str:
        return b"".join(self.stderr).decode("utf-8", "replace")

    def final_log(self, timeout: float = 20.0) -> str:
        """All of stderr, once the server (which has exited) closed it and the reader thread has it all."""
        self._stderr_reader.join(timeout)
        return self.log()

    def wait_log(self, text: str, timeout: float = 10.0) -> str:
        """The log once it holds text (stderr is read by a thread of its own: it may lag behind the answers)."""
        deadline = time.monotonic() + timeout
        while text not in self.log() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.log()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server():
    c = RawClient()
    yield c
    c.close()


def test_requests_before_initialize_are_refused(server, tiny_model):
    server.request("textDocument/inlineCompletion", {"textDocument": {"uri": "file:///a.py"},
                                                     "position": {"line": 0, "character": 0},
                                                     "context": {"triggerKind": 1}}, 1)
    assert server.answer_to(1)["error"]["code"] == -32002  # ServerNotInitialized
    server.notify("textDocument/didOpen", {"textDocument": {"uri": "file:///a.py", "languageId": "python",
                                                            "version": 1, "text": "x = 1\n"}})  # dropped
    server.request("workspace/executeCommand", {"command": "ckls.stats"}, 2)
    assert server.answer_to(2)["error"]["code"] == -32002
    server.initialize(tiny_model)
    server.request("workspace/executeCommand", {"command": "ckls.stats"}, 3)
    assert server.answer_to(3)["result"]["open_documents"] == 0  # the early didOpen was dropped


def test_garbage_gets_error_answers_and_no_pop_ups(server, tiny_model):
    server.initialize(tiny_model)
    server.write(b"Content-Length: 17\r\n\r\n{this is not json")
    reply = server.answer_to(None)
    assert reply["error"]["code"] == -32700 and reply["id"] is None  # parse error
    for body in (b"[]", b"5", b'"x"', b"[" * 100_000 + b"]" * 100_000):
        server.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        reply = server.answer_to(None)
        assert reply["error"]["code"] in (-32600, -32700), body[:20]
    server.write(b"Content-Length: 4\r\n\r\n\xff\xfe\x00\x01")  # not UTF-8
    assert server.answer_to(None)["error"]["code"] == -32700
    server.send({"jsonrpc": "1.0", "id": 7, "method": "workspace/executeCommand", "params": {"command": "ckls.stats"}})
    assert server.answer_to(7)["error"]["code"] == -32600  # InvalidRequest, not silence
    server.send({"id": 8, "method": "workspace/executeCommand", "params": {"command": "ckls.stats"}})
    assert server.answer_to(8)["error"]["code"] == -32600
    server.send({"jsonrpc": "2.0", "id": [9], "method": "shutdown"})
    assert server.answer_to(None)["error"]["code"] == -32600
    server.send({"jsonrpc": "2.0", "id": 10, "method": 5})
    assert server.answer_to(10)["error"]["code"] in (-32600, -32602)
    server.send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": 3}})
    server.send({"jsonrpc": "2.0", "method": "no/such/notification", "params": [1, 2]})
    # header garbage: lines that are no headers, a length that is no number, a body cut short by the next header
    server.write(b"hello\r\n\r\nContent-Length: -5\r\n\r\nContent-Length: x\r\n\r\nContent-Type: a\r\n\r\n")
    server.write(b"\n\n\r\n" + b"z" * 200_000 + b"\r\n")
    server.request("workspace/executeCommand", {"command": "ckls.stats"}, 11)
    assert "result" in server.answer_to(11)
    assert server.proc.poll() is None
    assert "Traceback" not in server.wait_log("bad Content-Length header")


@pytest.mark.parametrize("claimed", [10 ** 12, (64 << 20) + 1])
def test_huge_content_length_is_refused_then_resynced(server, tiny_model, claimed):
    server.initialize(tiny_model)
    # the claimed body never comes (or comes in part): the server must neither allocate it nor wait for it
    server.write(b"Content-Length: %d\r\n\r\n" % claimed + b'{"jsonrpc": "2.0", "id": 1, "method": "x"' + b" " * 5000)
    server.request("workspace/executeCommand", {"command": "ckls.stats"}, 2)
    assert "result" in server.answer_to(2)
    log = server.wait_log("Content-Length %d" % claimed)
    assert "over the limit" in log and "Traceback" not in log
    assert server.proc.poll() is None


def test_shutdown_then_requests_are_refused_and_exit_is_0(server, tiny_model):
    server.initialize(tiny_model)
    server.request("shutdown", None, 1)
    assert server.answer_to(1).get("error") is None
    server.request("workspace/executeCommand", {"command": "ckls.stats"}, 2)
    assert server.answer_to(2)["error"]["code"] == -32600  # InvalidRequest
    server.notify("exit")
    assert server.wait() == 0


def test_exit_without_shutdown_is_1(server, tiny_model):
    server.initialize(tiny_model)
    server.notify("exit")
    assert server.wait() == 1


def test_end_of_input_ends_the_server(server, tiny_model):
    server.initialize(tiny_model)
    server.proc.stdin.close()
    server.wait()
