"""The server's state and the steps its handlers take: settings from every source, open documents, the extra
context, the engine and its scheduler. Handlers in handlers.py stay a few lines each and call these."""
from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import OrderedDict
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import lsp_method

from ckls.config import Settings, load_toml
from ckls.completion.context import INDEX_LIMIT, Context, ExtraContext, build_context
from ckls.completion.engine import Engine, NoModel
from ckls.completion.postprocess import meaningful_text_right
from ckls.completion.scheduler import Answer, Scheduler
from ckls.completion.telemetry import Telemetry
from ckls.completion.documents import DocumentStore, index_to_units
from ckls.server.logs import TOLD
from ckls.server import progress
from ckls.server.wire import GuardedProtocol, log_server_error

log = logging.getLogger("ckls.server")
JUMP_LINES = 24        # an edit this far from the last place (or in another document) is a new place: prefill it


class CklsProtocol(GuardedProtocol):
    """Documents live in ckls's own store (exact UTF-16 positions, line-splice edits), not pygls's workspace
    copy, so these notifications go straight to the handlers. The JSON-RPC guards (requests that do not parse
    are answered, the life cycle, the reader) are GuardedProtocol's, in wire.py."""

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params):
        if (h := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield h, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params):
        if (h := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield h, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params):
        if (h := self.fm.features.get(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield h, (params,), None


def uri_path(uri: str) -> str:
    p = urlparse(uri)
    return unquote(p.path) if p.scheme == "file" else uri


class CklsServer(LanguageServer):
    def __init__(self, base_settings: Settings | None = None):
        from ckls import __version__

        super().__init__("ckls", __version__, protocol_cls=CklsProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.base = base_settings or Settings()   # defaults + CLI flags
        self.settings = self.base
        self.init_options: dict = {}
        self.log = None  # ckls.server.logs.ServerLog when run as a process (handlers.main)
        self.toml: dict = {}
        self.docs = DocumentStore()
        self.extra = ExtraContext()
        self.telemetry = Telemetry(self.settings.telemetry)
        self.engine = Engine(self.settings)
        self.scheduler = Scheduler(self.engine, self.settings, self.telemetry)
        self.model_status = "not loaded"
        self.loaded_key: tuple | None = None  # model_key of the settings of the last load begun
        self.root: str | None = None
        self.place: tuple[str, int] | None = None   # (uri, line) of the latest request or edit
        self.places: OrderedDict[str, int] = OrderedDict()  # uri -> its latest line, kept across close/reopen
        from ckls.server.indexing import IndexControl
        from ckls.server.tuning import TuneControl

        self.tuning = TuneControl(self)
        self.indexing = IndexControl(self)

    def report_server_error(self, error: Exception, source) -> None:
        log_server_error(error, source)  # pygls would show each as an "Error in server" pop-up

    # ---- settings and model -----------------------------------------------------------------------------------
    def tell(self, message: str, kind=types.MessageType.Warning, show: bool = True) -> None:
        if len(message) > 500:  # a pop-up, not a dump (a misread file name can be megabytes)
            message = message[:460] + f"... [{len(message)} characters]"
        # the log file gets it; the client gets it once, below, not a second time through the log
        told = {TOLD: True}
        log.warning(message, extra=told) if kind <= types.MessageType.Warning else log.info(message, extra=told)
        try:
            self.window_log_message(types.LogMessageParams(kind, f"ckls: {message}"))
            if show:
                self.window_show_message(types.ShowMessageParams(kind, f"ckls: {message}"))
        except Exception:  # no client attached (e.g. tests of the state alone)
            pass

    def apply_settings(self, *layers: dict | None) -> list[str]:
        """Recomputes settings from the base, ckls.toml, initializationOptions and the given layers."""
        s, problems = self.base.merged(self.toml)
        s, p2 = s.merged(self.init_options)
        problems += p2
        for layer in layers:
            s, p = s.merged(layer)
            problems += p
        self.settings = s
        self.scheduler.settings = s
        self.telemetry.enabled = s.telemetry
        if self.log is not None:
            problem = self.log.configure(s.log_level, s.log_file)
            if problem:
                problems.append(problem)
        return problems

    def read_toml(self, root: str | None) -> None:
        if not root:
            return
        try:
            self.toml = load_toml(os.path.join(root, "ckls.toml"))
        except Exception as exc:
            self.tell(str(exc))

    async def pull_configuration(self) -> None:
        caps = self.client_capabilities
        if not (caps and caps.workspace and caps.workspace.configuration):
            self.apply_settings()
            return
        try:
            res = await asyncio.wait_for(self.workspace_configuration_async(types.ConfigurationParams(
                items=[types.ConfigurationItem(section="ckls")])), 5.0)
        except Exception as exc:
            log.info("workspace/configuration failed: %s", exc)
            res = [None]
        problems = self.apply_settings(res[0] if res and isinstance(res[0], dict) else None)
        if problems:
            self.tell("settings ignored: " + "; ".join(problems))

    async def load_model(self) -> None:
        """(Re)loads the model the settings name, with work-done progress when the client supports it."""
        self.model_status = "loading"  # before the first await: a handler running meanwhile sees this load
        self.loaded_key = self.model_key(self.settings)
        token = await progress.begin(self, "load", "ckls: loading model",
                                     os.path.basename(self.settings.resolved_model_path), percentage=None)
        self.scheduler.cancel_current()
        self.scheduler.cache.clear()
        try:
            path = await asyncio.wrap_future(self.engine.load(self.settings))
            self.model_status = f"loaded {path}"
            self.tell(f"model {os.path.basename(path)} ready", types.MessageType.Info, show=False)
        except NoModel as exc:
            self.model_status = str(exc)
            self.tell(f"{exc}. Completion is off until a model is set.")
        except Exception as exc:  # never let a load failure take the server down
            self.model_status = f"cannot load model: {exc}"
            log.exception("model load failed")
            self.tell(self.model_status)
        finally:
            progress.end(self, token, self.model_status)
        if self.engine.ready:
            self.tuning.apply_saved()
            self.indexing.refresh_memory()  # a memory is built with the loaded model's tokenizer

    @staticmethod
    def model_key(s: Settings) -> tuple:
        """The settings a loaded model depends on."""
        return (s.resolved_model_path, s.n_ctx, s.n_threads, s.prefix_tokens, s.suffix_tokens, s.extra_tokens,
                s.fim_order, s.max_tokens)

    def needs_reload(self) -> bool:
        """Whether the settings now ask for another model than the one loaded or being loaded (a configuration
        change that lands while the first load runs, with the same settings, loads nothing twice)."""
        return self.model_key(self.settings) != self.loaded_key or (not self.engine.ready and
                                                                    self.model_status != "loading")

    # ---- documents --------------------------------------------------------------------------------------------
    def opened(self, uri: str, text: str, language_id: str, version: int) -> None:
        doc = self.docs.open(uri, text, language_id, version)
        self.extra.note_chunk(uri, uri_path(uri), doc.lines[:64], 0)
        if len(text) <= INDEX_LIMIT:
            self.extra.index(uri, language_id, text)
        if self.settings.language_enabled(language_id):
            # the cursor is not known yet: the prompt's context from other files is the same wherever it will be
            # (rendered for the middle of the document, whose window leaves out the chunk of its first lines that
            # was just added); a document worked on earlier in this session goes back to the end of that line, in
            # full (typing goes on at line ends, and there the suffix, which leads the prompt, is the same)
            line = self.places.get(uri)
            if line is not None and line < len(doc.lines):
                text = doc.lines[line].rstrip("\r\n")
                pos = types.Position(line, index_to_units(text, len(text), self.docs.encoding))
            else:
                line, pos = None, types.Position(len(doc.lines) // 2, 0)
            self.scheduler.idle_prefill(lambda: self.context_at(uri, pos), head_only=line is None)

    def changed(self, params: types.DidChangeTextDocumentParams) -> None:
        doc = self.docs.get(params.text_document.uri)
        if doc is None:
            return
        line = 0
        end = None
        for ch in params.content_changes:
            if isinstance(ch, types.TextDocumentContentChangePartial):
                r = ch.range
                doc.apply_change((r.start.line, r.start.character), (r.end.line, r.end.character), ch.text)
                line = r.start.line
                parts = ch.text.split("\n")
                end = types.Position(line + len(parts) - 1, (r.start.character if len(parts) == 1 else 0) +
                                     index_to_units(parts[-1], len(parts[-1]), self.docs.encoding))
            else:
                doc.apply_change(None, None, ch.text)
        doc.version = params.text_document.version
        self.tuning.touch()
        self.indexing.touch()
        self.extra.note_edit(doc.uri, uri_path(doc.uri), doc.lines, line)
        # one change is the user's own edit; many at once (a rename, formatting) say nothing about the cursor
        if end is not None and len(params.content_changes) == 1 and self.moved(doc.uri, end.line) \
                and self.settings.language_enabled(doc.language_id):
            uri = doc.uri
            self.scheduler.idle_prefill(lambda: self.context_at(uri, end))

    def moved(self, uri: str, line: int) -> bool:
        """Records the latest place; whether it is a new one (another document, or far from the last place)."""
        old, self.place = self.place, (uri, line)
        self.places[uri] = line
        self.places.move_to_end(uri)
        if len(self.places) > 512:
            self.places.popitem(last=False)
        return old is None or old[0] != uri or abs(old[1] - line) > JUMP_LINES

    def saved(self, uri: str) -> None:
        doc = self.docs.get(uri)
        if doc is None:
            return
        line = self.extra.last_edit.get(uri)
        if line is not None:
            self.extra.note_chunk(uri, uri_path(uri), doc.lines, line)
        if len(doc) <= INDEX_LIMIT:
            self.extra.index(uri, doc.language_id, doc.text)
        self.indexing.saved(uri_path(uri), doc.text)

    def closed(self, uri: str) -> None:
        self.docs.close(uri)
        self.extra.forget(uri)
        self.engine.drop_prefill(uri)

    # ---- completion -------------------------------------------------------------------------------------------
    def context_at(self, uri: str, pos: types.Position) -> Context | None:
        doc = self.docs.get(uri)
        if doc is None:
            return None
        s = self.settings
        before, after, first, line, col = doc.window(pos.line, pos.character, s.prefix_tokens * 6,
                                                     s.suffix_tokens * 6)
        return build_context(uri, doc.language_id, before, after, line, col, first, self.extra,
                             s.extra_tokens * 3, self.indexing.retrieval,
                             (*doc.around_line(line), self.indexing.memory_key(uri)) if s.memory_enabled else ())

    async def suggest(self, uri: str, pos: types.Position, automatic: bool) -> tuple[Answer, Context] | None:
        t0 = time.monotonic()  # the cap counts from here: building the context is part of the answer's time
        doc = self.docs.get(uri)
        if doc is None or not self.settings.language_enabled(doc.language_id):
            return None
        ctx = self.context_at(uri, pos)
        if ctx is None:
            return None
        self.moved(uri, pos.line)
        if automatic and not self.settings.trigger_with_text_right and meaningful_text_right(ctx.line_suffix):
            self.telemetry.count("suppressed")
            return None
        self.tuning.begin()  # training and the index build give the cores back until this answer is out
        self.indexing.begin()
        try:
            ans = await self.scheduler.complete(ctx, invoked=not automatic, t0=t0)
        except NoModel:
            return None
        finally:
            self.tuning.end()
            self.indexing.end()
        if ans is None or not ans.text:
            self.telemetry.count("empty")
            return None
        return ans, ctx

    def inline_items(self, uri: str, pos: types.Position, ans: Answer) -> types.InlineCompletionList:
        sid = uuid.uuid4().hex[:12]
        self.telemetry.did_show(sid, len(ans.text))
        cmd = types.Command(title="accepted", command="ckls.didAccept",
                            arguments=[{"id": sid, "uri": uri, "line": pos.line, "character": pos.character,
                                        "text": ans.text, "context": ans.context}])
        item = types.InlineCompletionItem(insert_text=ans.text, range=types.Range(pos, pos), command=cmd)
        return types.InlineCompletionList(items=[item])

    def completion_items(self, uri: str, pos: types.Position, ans: Answer, ctx: Context) -> types.CompletionList:
        """The suggestion as a completion item that replaces the word being typed (clients filter on it)."""
        import re

        word = re.search(r"[A-Za-z0-9_]*$", ctx.line_prefix).group(0)
        start = types.Position(pos.line, max(0, pos.character - index_to_units(word, len(word), self.docs.encoding)))
        sid = uuid.uuid4().hex[:12]
        self.telemetry.did_show(sid, len(ans.text))
        first = (word + ans.text).split("\n", 1)[0].strip() or ans.text.strip().split("\n", 1)[0]
        item = types.CompletionItem(
            label=first[:80], kind=types.CompletionItemKind.Text, detail="ckls", filter_text=word + ans.text,
            sort_text="0", text_edit=types.TextEdit(types.Range(start, pos), word + ans.text),
            insert_text_format=types.InsertTextFormat.PlainText,
            command=types.Command(title="accepted", command="ckls.didAccept",
                                  arguments=[{"id": sid, "uri": uri, "line": pos.line, "character": pos.character,
                                              "text": ans.text, "context": ans.context}]))
        return types.CompletionList(is_incomplete=True, items=[item])

    def accepted(self, arg, partial: bool = False) -> None:
        """Telemetry for an accepted suggestion (or its first `length` characters), then a prefetch at the end of
        the inserted text."""
        if not isinstance(arg, dict):
            return
        sid = str(arg.get("id", ""))
        text = arg.get("text") if isinstance(arg.get("text"), str) else ""
        n = arg.get("length")
        n = n if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= len(text) else None
        if partial:
            if n is None:
                return
            self.telemetry.did_partially_accept(sid, n)
        else:
            self.telemetry.did_accept(sid, n if n is not None else len(text))
        if arg.get("context") == "reduced":  # how often the cold answers are good enough to take
            self.telemetry.count("accepted_reduced")
        uri, line, char = arg.get("uri"), arg.get("line"), arg.get("character")
        if not (isinstance(uri, str) and isinstance(line, int) and isinstance(char, int) and text):
            return
        doc = self.docs.get(uri)
        if doc is None or not self.settings.language_enabled(doc.language_id):
            return
        inserted = text[:n] if isinstance(n, int) else text
        parts = inserted.split("\n")
        end = types.Position(line + len(parts) - 1,
                             (char if len(parts) == 1 else 0) + index_to_units(parts[-1], len(parts[-1]), self.docs.encoding))
        ctx = self.context_at(uri, end)
        if ctx is not None:
            self.scheduler.prefetch(ctx)

    def stats(self) -> dict:
        out = self.telemetry.stats()
        out["model"] = self.model_status
        out["cache_entries"] = len(self.scheduler.cache)
        eng = self.engine
        out["engine"] = {"prompt_tok_s": round(eng.meter.tok_s, 1), "step_ms": round(eng.meter.step_ms, 2),
                         "prefill_pending": eng.prefill_pending, "last": eng.last, "last_prefill": eng.last_prefill,
                         **eng.counts}
        out["open_documents"] = len(self.docs.docs)
        out["index"] = self.indexing.status
        mem = self.indexing.memory
        out["memory"] = mem.stats() if mem is not None else None
        out["settings"] = self.settings.as_dict()
        return out
