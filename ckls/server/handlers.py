"""LSP handlers: each turns params into a call on the server state and its answer into LSP types."""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from lsprotocol import types

from ckls.config import Settings
from ckls.server.state import CklsServer

log = logging.getLogger("ckls.server")


def create_server(settings: Settings | None = None) -> CklsServer:
    ls = CklsServer(settings)
    ls.kernel_outcomes = {}  # ckls.generateKernel results by id, for ckls.applyKernel

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
        if ls.log is not None:  # a client to send the log to: window/logMessage from now on, not stderr
            ls.log.connected(ls, asyncio.get_running_loop())
        ls.read_toml(root)
        problems = ls.apply_settings()
        if problems:
            log.warning("settings ignored: %s", "; ".join(problems))

    @ls.feature(types.INITIALIZED)
    async def initialized(ls: CklsServer, params: types.InitializedParams):
        await ls.pull_configuration()
        if ls.needs_reload():  # (a configuration change may have begun the load already)
            await ls.load_model()
        await ls.indexing.start()
        if ls.settings.tune_enabled:
            await ls.tuning.start(auto=True)

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: CklsServer, params: types.DidChangeConfigurationParams):
        caps = ls.client_capabilities
        if caps and caps.workspace and caps.workspace.configuration:
            await ls.pull_configuration()
        else:
            problems = ls.apply_settings(params.settings if isinstance(params.settings, dict) else None)
            if problems:
                ls.tell("settings ignored: " + "; ".join(problems))
        if ls.needs_reload():
            await ls.load_model()
        await ls.indexing.start()  # retrieval switched on: the index is built now

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
            await ls.tuning.start(auto=True)  # a saved file is new material; the round waits for the user to be idle

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

    @ls.command("ckls.generateKernel")
    async def generate_kernel(ls: CklsServer, *args):
        return await _generate_kernel(ls, _kernel_args(args))

    @ls.command("ckls.verifyKernel")
    async def verify_kernel(ls: CklsServer, *args):
        return await _verify_kernel(ls, _kernel_args(args))

    @ls.command("ckls.applyKernel")
    async def apply_kernel(ls: CklsServer, *args):
        return await _apply_kernel(ls, _kernel_args(args))

    @ls.feature(types.SHUTDOWN)
    def shutdown(ls: CklsServer, *args):
        ls.scheduler.cancel_current()
        ls.indexing.close()
        ls.tuning.touch()
        if ls.tuning.activity is not None:
            ls.tuning.activity.stop()

    return ls


# ---- the kernel command: LSP glue over ckls.kernels.service (asking, progress, cancel) -------------------------
def _kernel_args(args) -> dict:
    a = args[0] if args else {}
    if not isinstance(a, dict):
        raise ValueError("ckls kernel commands take one object argument")
    return a


async def _kernel_task(ls: CklsServer, a: dict):
    """The task for the function at a.position / a.range (or a.function) of a.uri; open questions are asked
    with window/showMessageRequest (no answer = the default)."""
    from ckls.kernels.service import draft_for
    from ckls.server.state import uri_path

    doc = ls.docs.get(a["uri"])
    rng = a.get("range") or {}
    pos = a.get("position") or rng.get("start") or {}
    fn = draft_for(uri_path(a["uri"]), name=a.get("function"), line=pos.get("line"), col=pos.get("character", 0),
                   end_line=(rng.get("end") or {}).get("line"), text=doc.text if doc else None,
                   root=ls.workspace.root_path, spec_path=a.get("spec"))
    answers = dict(a.get("answers") or {})
    draft = await asyncio.to_thread(fn, answers)
    for _ in range(8):
        if not draft.questions:
            break
        for q in draft.questions:
            got = await ls.window_show_message_request_async(types.ShowMessageRequestParams(
                types.MessageType.Info, f"ckls: {q.prompt}", [types.MessageActionItem(c) for c in q.choices]))
            answers[q.key] = got.title if got is not None and got.title in q.choices else q.default
        draft = await asyncio.to_thread(fn, answers)
    return draft.task()


async def _with_progress(ls: CklsServer, title: str, work, redact):
    """Runs work(progress, cancel) in a thread, reporting $/progress (masked by redact, as is the log line);
    the client's cancel sets the event."""
    import threading
    import uuid

    token, cancel, loop = str(uuid.uuid4()), threading.Event(), asyncio.get_running_loop()
    try:
        await ls.work_done_progress.create_async(token)
    except Exception:
        token = None
    if token:
        ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=True))
        ls.work_done_progress.tokens[token].add_done_callback(lambda f: f.cancelled() and cancel.set())

    def progress(msg: str) -> None:
        msg = redact(msg)
        log.info("kernel: %s", msg)
        if token:
            loop.call_soon_threadsafe(ls.work_done_progress.report, token,
                                      types.WorkDoneProgressReport(message=msg[:300]))
    try:
        return await asyncio.to_thread(work, progress, cancel)
    finally:
        if token:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd())


async def _generate_kernel(ls: CklsServer, a: dict) -> dict:
    import uuid

    from ckls.kernels.agent import AgentConfig
    from ckls.kernels.redact import redactor
    from ckls.kernels.service import generate

    task = await _kernel_task(ls, a)
    opts = ls.init_options.get("kernel", {}) if isinstance(ls.init_options.get("kernel"), dict) else {}
    get = lambda k, d=None: a.get(k, opts.get(k, d))  # noqa: E731
    cfg = AgentConfig(**{k: v for k, v in dict(
        model=get("model"), max_turns=get("maxTurns"), max_tokens=get("maxTokens"), budget_tokens=get("budgetTokens"),
        base_url=get("baseUrl"), api_key=get("apiKey") or ls.init_options.get("anthropicApiKey"),
        skills=get("skills")).items() if v is not None})
    lang = a.get("lang", "c")
    red = redactor(cfg.api_key or os.environ.get("ANTHROPIC_API_KEY"), task.py_path)
    out = await _with_progress(ls, f"ckls kernel: {task.func_name} ({lang})", lambda p, c: generate(
        task, lang, cfg, progress=p, cancel=c, budget=get("verifyBudget", "full")), red)
    kid = str(uuid.uuid4())
    ls.kernel_outcomes[kid] = out
    return dict(out.to_dict(cfg.model), id=kid)  # masked by the outcome's redactor


async def _verify_kernel(ls: CklsServer, a: dict) -> dict:
    from ckls.kernels.redact import redactor
    from ckls.kernels.service import judge

    task = await _kernel_task(ls, a)
    source = a.get("source") or open(a["kernelPath"]).read()
    red = redactor(ls.init_options.get("anthropicApiKey") or os.environ.get("ANTHROPIC_API_KEY"), task.py_path)
    rep, path = await _with_progress(ls, f"ckls verify: {task.func_name}", lambda p, c: judge(
        task, source, a.get("lang", "c"), budget=a.get("budget", "full"), progress=p, redact=red), red)
    return red.obj({"verdict": rep.verdict, "report": rep.to_markdown(), "report_json": rep.to_dict(),
                    "kernel_path": path})


async def _apply_kernel(ls: CklsServer, a: dict) -> dict:
    """A WorkspaceEdit for a generated kernel (by id); with "apply": true the server also asks the client to
    apply it (workspace/applyEdit)."""
    from ckls.kernels.service import apply_plan

    out = ls.kernel_outcomes.get(a.get("id", ""))
    if out is None:
        raise ValueError("no generated kernel with that id: run ckls.generateKernel first")
    doc = ls.docs.get(Path(out.task.py_path).as_uri())
    edit = apply_plan(out, force=bool(a.get("force")), py_text=doc.text if doc else None).workspace_edit()
    if a.get("apply"):
        await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(
            edit=_converter().structure(edit, types.WorkspaceEdit), label="ckls: apply kernel"))
    return edit


_CONVERTER = []


def _converter():
    """pygls's converter (the one its protocol uses by default: lsprotocol's plus JSON-RPC hooks), made once."""
    if not _CONVERTER:
        from pygls.protocol import default_converter

        _CONVERTER.append(default_converter())
    return _CONVERTER[0]


def main(settings: Settings | None = None) -> int:
    from ckls.server.logs import ServerLog
    from ckls.server.wire import serve_stdio

    server_log = ServerLog()
    s = settings or Settings()
    problem = server_log.configure(s.log_level, s.log_file)
    if problem:
        log.error(problem)
    ls = create_server(settings)
    ls.log = server_log
    try:
        return serve_stdio(ls)
    finally:
        ls.scheduler.cancel_current()
        server_log.close()
