"""JSON-RPC over stdio where pygls 2.1.1 does not hold against a hostile or broken client. All of ckls's
work-arounds of pygls's message layer live here:

- its reader (`pygls.io_.run_async`) allocates whatever Content-Length claims (1e12: MemoryError, the server
  dies), reads header lines of any length, and drops unparsable JSON without the parse-error answer JSON-RPC
  asks for. `serve_stdio` reads instead: bounded header lines, a Content-Length limit (a larger message is
  logged and skipped by scanning for the next header, never allocated), -32700 / -32600 answers with id null;
- its dispatcher answers requests before `initialize`, stays silent for requests after `shutdown` and for any
  message whose "jsonrpc" is not "2.0" (a client waits forever). `GuardedProtocol` refuses them with
  ServerNotInitialized (-32002) / InvalidRequest (-32600) and drops such notifications (LSP 3.17 "initialize");
- its `exit` handler calls sys.exit(1) without `shutdown`, but its start_io swallows the SystemExit: the
  process exited 0. `serve_stdio` returns the code `exit` decided;
- its reader runs in its thread pool, whose threads the interpreter waits for at exit: a server blocked on stdin
  ignored Ctrl-C and SIGTERM. `serve_stdio` reads in a daemon thread (from its own copy of fd 0, so exit never
  waits on stdin's lock) and ends with exit code 0 on SIGTERM, SIGINT and the end of stdin;
- its error reporter shows every protocol error as a "Error in server" pop-up (window/showMessage):
  `log_server_error` writes them to the log instead (the user's messages are the server's own, see `tell`).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import queue
import re
import signal
import sys
import threading

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol, lsp_method

log = logging.getLogger("ckls.server")

MAX_CONTENT_LENGTH = 64 << 20   # bytes; a 10 MB document is ~10 MB of JSON, far below
MAX_HEADER_LINE = 1 << 16       # a header line longer than this is garbage (read in pieces, dropped)
# "Content-Length: N" at the end of a line: after garbage (a skipped body ends without a line break) the next
# message's header may be glued to it
_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?\n\Z", re.IGNORECASE)
PARSE_ERROR, INVALID_REQUEST, SERVER_NOT_INITIALIZED = -32700, -32600, -32002


class _NoDeserializeTraceback(logging.Filter):
    """pygls logs a traceback for each message that does not fit its type; handle_raw logs one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unable to deserialize message")


logging.getLogger("pygls.protocol.json_rpc").addFilter(_NoDeserializeTraceback())


def _short(text, n: int = 200) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n] + f"... ({len(text)} characters)"


class GuardedProtocol(LanguageServerProtocol):
    """The LSP life cycle's rules on what may come when (see the module's docstring)."""

    exit_code = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._initialize_seen = False

    def send_error(self, msg_id, code: int, message: str) -> None:
        # pygls's ResponseErrorMessage leaves out an id of None; JSON-RPC wants "id": null there
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}})

    def handle_raw(self, body: bytes) -> None:
        """One message's body: parsed, checked against the life cycle, then dispatched by pygls."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            log.error("unparsable message (%d bytes): %s", len(body), _short(exc))
            return self.send_error(None, PARSE_ERROR, f"Parse error: {_short(exc)}")
        msg_id = data.get("id") if isinstance(data, dict) else None
        valid_id = isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool)
        if not isinstance(data, dict) or data.get("jsonrpc") != "2.0" or ("id" in data and not valid_id) \
                or ("method" in data and not isinstance(data["method"], str)):
            log.error("invalid JSON-RPC message: %s", _short(body))
            if not isinstance(data, dict) or "method" in data or "id" in data:
                self.send_error(msg_id if valid_id else None, INVALID_REQUEST,
                                'Invalid Request: a JSON-RPC 2.0 object ("jsonrpc": "2.0") with a string method '
                                "and an integer or string id is expected")
            return
        method = data.get("method")
        request = "method" in data and "id" in data
        if "method" in data and method != types.INITIALIZE and method != types.EXIT and not self._initialize_seen:
            log.info("%s before initialize refused", _short(method, 80))
            if request:
                self.send_error(msg_id, SERVER_NOT_INITIALIZED, f"{_short(method, 80)}: the server is not "
                                "initialized yet (send initialize first)")
            return
        if request and self._shutdown:
            return self.send_error(msg_id, INVALID_REQUEST, f"{_short(method, 80)}: the server is shut down")
        try:
            message = self.structure_message(data)  # the top level only: no nested dict is taken for a message
        except JsonRpcException as exc:
            log.error("message not understood: %s (%s: %s)", _short(body), exc, _short(exc.__cause__, 300))
            if request:  # pygls would drop it and leave the client waiting
                self._send_response(msg_id, error=exc.to_response_error())
            return
        if request and method == types.INITIALIZE:
            self._initialize_seen = True
        self.handle_message(message)

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args):
        self.exit_code = 0 if self._shutdown else 1
        yield from super().lsp_exit(*args)


def log_server_error(error: Exception, source) -> None:
    """The server's error reporter: the log, not a pop-up."""
    log.error("%s: %s", getattr(source, "__name__", source), _short(error, 500))


async def _read_loop(stop: threading.Event, stdin, protocol: GuardedProtocol, executor) -> None:
    loop = asyncio.get_running_loop()
    length: int | None = None
    garbage = False  # within a run of garbage lines: logged once
    while not stop.is_set():
        line = await loop.run_in_executor(executor, stdin.readline, MAX_HEADER_LINE)
        if not line:
            return  # end of input
        if line.strip():  # a header line (or garbage)
            m = _LENGTH.search(line)
            if m is None:
                if not line.lower().startswith(b"content-type") and not garbage:
                    log.error("not a JSON-RPC header, skipped (and what follows up to the next header): %s",
                              _short(line, 80))
                    garbage = True
                continue
            garbage = False
            value = m.group(1)
            length = int(value) if value.isdigit() and len(value) <= 15 else None
            if length is None:
                log.error("bad Content-Length header skipped: %s", _short(line, 80))
            continue
        if length is None:
            continue  # a blank line that ends no header block
        if length > MAX_CONTENT_LENGTH:
            # neither allocated nor waited for: the bytes that follow are read as (garbage) lines until the next
            # header, so a client that sends less than it claimed is still heard
            log.error("message refused: Content-Length %d is over the limit of %d bytes; skipping to the next "
                      "message", length, MAX_CONTENT_LENGTH)
            length = None
            continue
        body = await loop.run_in_executor(executor, stdin.read, length)
        if len(body) < length:
            return  # end of input inside a body
        length = None
        try:
            protocol.handle_raw(body)
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # a dispatcher failure must not end the loop
            log.exception("message not handled: %s", _short(exc))


class _DaemonExecutor(concurrent.futures.Executor):
    """One daemon thread running the calls in turn: a read blocked on stdin never holds up the process's exit."""

    def __init__(self):
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="ckls-stdin", daemon=True).start()

    def submit(self, fn, *args, **kwargs):
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._calls.put((fut, fn, args, kwargs))
        return fut

    def _run(self) -> None:
        while True:
            fut, fn, args, kwargs = self._calls.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                fut.set_exception(exc)


def _stdin_reader():
    """A reader of fd 0 of its own (not sys.stdin's: a thread blocked in it must not hold the lock the
    interpreter takes on stdin at exit)."""
    try:
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    except (AttributeError, OSError, ValueError):  # no real stdin (embedded, tests): use what there is
        return sys.stdin.buffer


async def _serve(server, stdin) -> None:
    """The read loop until the end of input, `exit`, SIGTERM or SIGINT (both: a clean stop, exit code 0)."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    stopped: list[str] = []

    def stop(name: str) -> None:
        log.info("%s: shutting down", name)
        stopped.append(name)
        server._stop_event.set()
        main.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop, sig.name)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signal here
            pass
    try:
        await _read_loop(server._stop_event, stdin, server.protocol, _DaemonExecutor())
    except asyncio.CancelledError:
        if not stopped:
            raise


def serve_stdio(server) -> int:
    """pygls's start_io with the reader above; the process's exit code (1 after `exit` without `shutdown`)."""
    from pygls.io_ import StdoutWriter

    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    try:
        asyncio.run(_serve(server, _stdin_reader()))
    except BrokenPipeError:
        log.error("the connection to the client is lost; shutting down")
    except SystemExit:  # `exit`: pygls's handler decided the code (GuardedProtocol.exit_code)
        pass
    finally:
        server.shutdown()
    return server.protocol.exit_code
