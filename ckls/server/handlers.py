"""LSP handlers: each turns params into a call on the server state and its answer into LSP types."""
from __future__ import annotations

import asyncio
import logging

from lsprotocol import types

from ckls.completion.config import Settings
from ckls.server.state import CklsServer

log = logging.getLogger("ckls.server")


def create_server(settings: Settings | None = None) -> CklsServer:
    ls = CklsServer(settings)

    @ls.feature(types.INITIALIZE)
    def initialize(ls: CklsServer, params: types.InitializeParams):
        opts = params.initialization_options
        ls.init_options = opts if isinstance(opts, dict) else {}
        root = None
        if params.workspace_folders:
            from ckls.server.state import uri_path

            root = uri_path(params.workspace_folders[0].uri)
        elif params.root_uri:
            from ckls.server.state import uri_path

            root = uri_path(params.root_uri)
        elif params.root_path:
            root = params.root_path
        enc = ls.workspace.position_encoding  # pygls picks it from the client's preferences
        ls.docs.encoding = {"utf-8": "utf-8", "utf-32": "utf-32"}.get(str(getattr(enc, "value", enc)), "utf-16")
        ls.root = root
        ls.read_toml(root)
        problems = ls.apply_settings()
        if problems:
            log.warning("settings ignored: %s", "; ".join(problems))

    @ls.feature(types.INITIALIZED)
    async def initialized(ls: CklsServer, params: types.InitializedParams):
        await ls.pull_configuration()
        await ls.load_model()
        if ls.settings.tune_enabled:
            await ls.tuning.start()

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: CklsServer, params: types.DidChangeConfigurationParams):
        old = ls.settings
        caps = ls.client_capabilities
        if caps and caps.workspace and caps.workspace.configuration:
            await ls.pull_configuration()
        else:
            problems = ls.apply_settings(params.settings if isinstance(params.settings, dict) else None)
            if problems:
                ls.tell("settings ignored: " + "; ".join(problems))
        if ls.needs_reload(old):
            await ls.load_model()

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CklsServer, params: types.DidOpenTextDocumentParams):
        d = params.text_document
        ls.opened(d.uri, d.text, d.language_id, d.version)

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CklsServer, params: types.DidChangeTextDocumentParams):
        ls.changed(params)

    @ls.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: CklsServer, params: types.DidSaveTextDocumentParams):
        ls.saved(params.text_document.uri)
        if ls.settings.tune_enabled and not ls.tuning.running:
            await ls.tuning.start()  # a saved file is new material; the round waits for the user to be idle

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CklsServer, params: types.DidCloseTextDocumentParams):
        ls.closed(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: CklsServer, params: types.InlineCompletionParams):
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        got = await ls.suggest(params.text_document.uri, params.position, automatic)
        return ls.inline_items(params.text_document.uri, params.position, got[0]) if got else None

    @ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls: CklsServer, params: types.CompletionParams):
        invoked = params.context is not None and params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        got = await ls.suggest(params.text_document.uri, params.position, automatic=not invoked)
        return ls.completion_items(params.text_document.uri, params.position, got[0], got[1]) if got else None

    @ls.command("ckls.didAccept")
    def did_accept(ls, *args):
        for a in args:
            ls.accepted(a)

    @ls.command("ckls.didPartiallyAccept")
    def did_partially_accept(ls, *args):
        for a in args:
            ls.accepted(a, partial=True)

    @ls.command("ckls.stats")
    def stats(ls, *args):
        return ls.stats()

    @ls.command("ckls.reloadModel")
    async def reload_model(ls, *args):
        await ls.load_model()
        return ls.model_status

    @ls.command("ckls.tune.start")
    async def tune_start(ls, *args):
        return await ls.tuning.start()

    @ls.command("ckls.tune.stop")
    async def tune_stop(ls, *args):
        return await ls.tuning.stop()

    @ls.command("ckls.tune.status")
    def tune_status(ls, *args):
        return ls.tuning.status()

    @ls.feature(types.SHUTDOWN)
    def shutdown(ls: CklsServer, *args):
        ls.scheduler.cancel_current()
        ls.tuning.touch()
        if ls.tuning.activity is not None:
            ls.tuning.activity.stop()

    return ls


def main(settings: Settings | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="ckls %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message at INFO
    ls = create_server(settings)
    try:
        ls.start_io()
    finally:
        ls.scheduler.cancel_current()
    return 0
