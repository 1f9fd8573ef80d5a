"""Where the language server's log goes. An editor files whatever a server writes on stderr as errors (Neovim:
`[ERROR]` for every line), so once a client is connected the log travels as `window/logMessage` (the record's
level mapped to a MessageType, from the `log_level` setting up), and stderr keeps only errors. Before the client
has said `initialize` (nobody to send to) stderr takes warnings and errors. `log_file` (or `--log-file`)
appends every record from `log_level` up to a file as well."""
from __future__ import annotations

import logging
import os
import sys
import threading

from lsprotocol import types

LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}
TOLD = "ckls_told"  # a record's attribute: the server already sent it to the client itself (CklsServer.tell)


def message_type(levelno: int) -> types.MessageType:
    if levelno >= logging.ERROR:
        return types.MessageType.Error
    if levelno >= logging.WARNING:
        return types.MessageType.Warning
    if levelno >= logging.INFO:
        return types.MessageType.Info
    return types.MessageType.Log


class ClientHandler(logging.Handler):
    """Sends records as window/logMessage once attached to a server and its event loop; records from other
    threads are handed to the loop (one writer on stdout)."""

    def __init__(self, level: int = logging.INFO):
        super().__init__(level)
        self.server = None
        self.loop = None
        self.loop_thread: int | None = None
        self._busy = threading.local()  # a record logged while sending one is dropped, not sent in a loop

    def attach(self, server, loop) -> None:
        """Called on the loop's own thread."""
        self.server, self.loop, self.loop_thread = server, loop, threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if self.server is None or self.loop is None or getattr(record, TOLD, False) or \
                getattr(self._busy, "on", False):
            return
        try:
            params = types.LogMessageParams(message_type(record.levelno), self.format(record))
            if self.loop.is_closed():
                return
            if self.loop_thread == threading.get_ident():
                self._send(params)
            else:
                self.loop.call_soon_threadsafe(self._send, params)
        except Exception:  # never let logging take anything down
            pass

    def _send(self, params) -> None:
        self._busy.on = True
        try:
            self.server.window_log_message(params)
        except Exception:
            pass
        finally:
            self._busy.on = False


class ServerLog:
    """The handlers on the root logger while the server runs: stderr, the client, an optional file."""

    def __init__(self):
        self.stderr = logging.StreamHandler(sys.stderr)
        self.stderr.setLevel(logging.WARNING)
        self.stderr.setFormatter(logging.Formatter("ckls %(levelname)s %(name)s: %(message)s"))
        self.client = ClientHandler()
        self.client.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.file: logging.FileHandler | None = None
        self.file_path = ""
        root = logging.getLogger()
        for h in list(root.handlers):  # ours alone: no second copy of each line on stderr
            root.removeHandler(h)
        root.addHandler(self.stderr)
        root.addHandler(self.client)
        root.setLevel(logging.DEBUG)
        logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message at INFO

    def connected(self, server, loop) -> None:
        """The client said initialize: the log goes to it, stderr keeps errors."""
        self.client.attach(server, loop)
        self.stderr.setLevel(logging.ERROR)

    def configure(self, level: str, file: str) -> str | None:
        """Applies the log_level and log_file settings; a message when the file cannot be opened."""
        lv = LEVELS.get(level, logging.INFO)
        self.client.setLevel(lv)
        if self.file is not None:
            self.file.setLevel(lv)
        file = os.path.expanduser(file) if file else ""
        if file == self.file_path:
            return None
        root = logging.getLogger()
        if self.file is not None:
            root.removeHandler(self.file)
            self.file.close()
            self.file = None
        self.file_path = file
        if not file:
            return None
        try:
            self.file = logging.FileHandler(file, encoding="utf-8")
        except OSError as exc:
            self.file_path = ""
            return f"log_file {file}: {exc.strerror or exc}"
        self.file.setLevel(lv)
        self.file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(self.file)
        return None

    def close(self) -> None:
        self.client.server = None
        if self.file is not None:
            self.file.close()
