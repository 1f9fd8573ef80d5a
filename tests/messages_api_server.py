"""A local HTTP server that speaks the Anthropic Messages API (POST /v1/messages), for tests only: it stands in
for the network, nothing else. The real SDK talks to it through base_url.

It plays a script, one step per request. A step is a dict, or a callable taking the request body (and the
server) and returning one:
  {"content": [{"type": "text", "text": ...} | {"type": "tool_use", "name": ..., "input": {...}}],
   "stop_reason": "tool_use" | "end_turn" | "max_tokens" | "refusal", "output_tokens": 40}
  {"status": 429 | 500 | 529 | 401, "error_type": "rate_limit_error", "headers": {"retry-after-ms": "5"}}
  {"stream_error": "overloaded_error"}   (message_start, then an SSE error event, as the API does mid-stream)
  {"silent": True}                       answers nothing until the client gives up (its timeout) and closes
                                         the connection; a 500 after LIMIT_S, should it never
  {"hold": True}                         a streamed text answer that never ends: a blank text delta every 20 ms
                                         until the client stops reading (the agent's cancel), or LIMIT_S
  {..., "cut_after": 3}                  a broken stream: the first 3 events of the answer, then the connection
                                         closes (no message_stop); with "short_body": True the response
                                         first promises a longer body (content-length), so the client sees a
                                         connection lost mid-body
  {..., "cut_after": 3, "raw": b"..."}   the same, with these bytes sent before the close (garbled JSON, bytes
                                         that are not UTF-8, half an event)
Streaming requests get server-sent events in the API's order and shapes (message_start, content_block_start,
ping, content_block_delta text_delta / input_json_delta in several pieces, content_block_stop, message_delta
with stop_reason and usage, message_stop); others a JSON message. Every request is recorded, and every
exception a scripted callable raises is kept in `errors` for the test to assert on.
"""
from __future__ import annotations

import itertools
import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ids = itertools.count(1)
LIMIT_S = 120.0  # how long a silent or held answer waits for the client at most


def _chunks(s: str, n: int = 3) -> list[str]:
    k = max(1, -(-len(s) // n))
    return [s[i:i + k] for i in range(0, len(s), k)] or [""]


class MessagesAPIServer:
    def __init__(self, script: list, api_key: str = "sk-ant-test-key"):
        self.script = list(script)
        self.api_key = api_key
        self.requests: list[dict] = []
        self.errors: list[str] = []
        self.reported: list[dict] = []   # usage as sent, per completed message
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- what each step sends ---------------------------------------------------------------------------------
    def _next(self, body: dict) -> dict:
        with self._lock:
            if not self.script:
                self.errors.append("request beyond the end of the script")
                return {"status": 400, "error_type": "invalid_request_error", "message": "script exhausted"}
            step = self.script.pop(0)
        if callable(step):
            try:
                step = step(body, self)
            except Exception as e:  # the test asserts on these
                self.errors.append(f"{type(e).__name__}: {e}")
                return {"status": 400, "error_type": "invalid_request_error", "message": str(e)}
        return step

    def _usage(self, body: dict, step: dict) -> dict:
        n_in = len(json.dumps(body)) // 4
        cached = any("cache_control" in b for b in body.get("system", []) if isinstance(b, dict))
        first = len(self.reported) == 0
        write = (n_in // 2 if first else 0) if cached else 0
        read = (n_in // 2 if not first else 0) if cached else 0
        return {"input_tokens": n_in - write - read, "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read, "output_tokens": int(step.get("output_tokens", 40))}

    def _message(self, body: dict, step: dict) -> tuple[dict, list[dict]]:
        content = []
        for b in step.get("content", []):
            if b["type"] == "tool_use":
                content.append({"type": "tool_use", "id": f"toolu_{next(_ids):08d}", "name": b["name"],
                                "input": b["input"]})
            else:
                content.append({"type": "text", "text": b["text"]})
        usage = self._usage(body, step)
        msg = {"id": f"msg_{next(_ids):08d}", "type": "message", "role": "assistant", "model": body.get("model"),
               "content": content, "stop_reason": step.get("stop_reason", "end_turn"), "stop_sequence": None,
               "usage": usage}
        with self._lock:
            self.reported.append(usage)
        return msg, content

    def _handler(self):
        srv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _json(self, code: int, obj: dict, headers: dict | None = None):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_{next(_ids):08d}")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _event(self, name: str, obj: dict):
                self.wfile.write(f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode())
                self.wfile.flush()

            def _wait_for_the_client_to_leave(self):
                deadline = time.monotonic() + LIMIT_S
                while time.monotonic() < deadline:
                    if select.select([self.connection], [], [], 0.05)[0]:
                        try:
                            if not self.connection.recv(1, socket.MSG_PEEK):
                                return  # end of file: the client closed the connection
                        except OSError:
                            return
                        time.sleep(0.05)  # (readable, not closed: bytes of a next request; not expected)

            def _hold(self, body: dict):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream; charset=utf-8")
                self.send_header("connection", "close")
                self.end_headers()
                self.close_connection = True
                msg, _ = srv._message(body, {"content": [{"type": "text", "text": ""}]})
                self._event("message_start", {"type": "message_start", "message": dict(msg, content=[])})
                self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                                    "content_block": {"type": "text", "text": ""}})
                deadline = time.monotonic() + LIMIT_S
                while time.monotonic() < deadline:  # a client that stopped reading makes a write fail (do_POST)
                    self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                        "delta": {"type": "text_delta", "text": " "}})
                    time.sleep(0.02)
                self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
                self._event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                              "stop_sequence": None}, "usage": {"output_tokens": 1}})
                self._event("message_stop", {"type": "message_stop"})

            def do_POST(self):
                try:
                    self._post()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout): fine
                    pass

            def _post(self):
                n = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                with srv._lock:
                    srv.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path.split("?")[0] != "/v1/messages":
                    return self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                                       "message": self.path}})
                bearer = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                if srv.api_key not in (self.headers.get("x-api-key"), bearer):
                    return self._json(401, {"type": "error", "error": {"type": "authentication_error",
                                                                       "message": "invalid API key"}})
                step = srv._next(body)
                if step.get("silent"):
                    self._wait_for_the_client_to_leave()
                    return self._json(500, {"type": "error", "error": {"type": "api_error", "message": "late"}})
                if step.get("hold"):
                    return self._hold(body)
                if "status" in step:
                    return self._json(step["status"], {"type": "error", "error": {
                        "type": step.get("error_type", "api_error"), "message": step.get("message", "scripted")}},
                        step.get("headers"))
                if not body.get("stream"):
                    msg, _ = srv._message(body, step)
                    return self._json(200, msg)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream; charset=utf-8")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                if step.get("short_body"):
                    self.send_header("content-length", str(10 ** 6))
                self.end_headers()
                self.close_connection = True
                if "stream_error" in step:
                    start = {"id": f"msg_{next(_ids):08d}", "type": "message", "role": "assistant",
                             "model": body.get("model"), "content": [], "stop_reason": None,
                             "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}
                    self._event("message_start", {"type": "message_start", "message": start})
                    self._event("error", {"type": "error", "error": {"type": step["stream_error"],
                                                                     "message": "Overloaded"}})
                    return
                msg, content = srv._message(body, step)
                if "cut_after" in step:  # a broken stream: so many events, maybe raw bytes, then the close
                    events, self._event = [], lambda name, obj: events.append((name, obj))
                usage = msg["usage"]
                start = dict(msg, content=[], stop_reason=None, usage=dict(usage, output_tokens=1))
                self._event("message_start", {"type": "message_start", "message": start})
                for i, b in enumerate(content):
                    if b["type"] == "text":
                        self._event("content_block_start", {"type": "content_block_start", "index": i,
                                                            "content_block": {"type": "text", "text": ""}})
                        if i == 0:
                            self._event("ping", {"type": "ping"})
                        for piece in _chunks(b["text"]):
                            self._event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                                "delta": {"type": "text_delta", "text": piece}})
                    else:
                        self._event("content_block_start", {"type": "content_block_start", "index": i,
                                                            "content_block": {"type": "tool_use", "id": b["id"],
                                                                              "name": b["name"], "input": {}}})
                        for piece in [""] + _chunks(json.dumps(b["input"]), 4):
                            self._event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                                "delta": {"type": "input_json_delta",
                                                                          "partial_json": piece}})
                    self._event("content_block_stop", {"type": "content_block_stop", "index": i})
                self._event("message_delta", {"type": "message_delta", "delta": {
                    "stop_reason": msg["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]}})
                self._event("message_stop", {"type": "message_stop"})
                if "cut_after" in step:
                    del self._event
                    for name, obj in events[:step["cut_after"]]:
                        self._event(name, obj)
                    self.wfile.write(step.get("raw", b""))
                    self.wfile.flush()

        return H


# ---- helpers for scripts ---------------------------------------------------------------------------------------
def tool(tool_name: str, text: str = "", stop: str = "tool_use", **inp) -> dict:
    content = ([{"type": "text", "text": text}] if text else []) + [{"type": "tool_use", "name": tool_name, "input": inp}]
    return {"content": content, "stop_reason": stop}


def say(text: str, stop: str = "end_turn") -> dict:
    return {"content": [{"type": "text", "text": text}], "stop_reason": stop}


def last_tool_results(body: dict) -> list[dict]:
    """The tool_result blocks of the newest user turn of a request."""
    msgs = body.get("messages", [])
    if not msgs or msgs[-1]["role"] != "user" or isinstance(msgs[-1]["content"], str):
        return []
    return [b for b in msgs[-1]["content"] if b.get("type") == "tool_result"]


def result_text(block: dict) -> str:
    c = block.get("content")
    if isinstance(c, list):
        return "\n".join(x.get("text", "") for x in c)
    return c or ""
