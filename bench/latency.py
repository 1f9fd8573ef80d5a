"""Typing latency of the ckls language server, measured the way an editor sees it.

A real LSP client (pygls) starts `python -m ckls serve` over stdio, opens real source files taken from packages
installed in this Python environment (third-party code, not ckls's), and re-types a stretch of each one character
by character with human-like pauses, asking for an inline completion after every keystroke and cancelling the
previous request when it is still pending (as VS Code does). It reports request→response times (warm p50/p95),
the cold figures — on a document just opened, the time from the first request to the first suggestion (and
whether that came from the full prompt or a reduced one, with the prompt sizes), then the time until the
full-context suggestion is ready (asked again there, it is the answer), with where that time went (cold_profile:
prompt building, chunk evaluation, chunks lost to requests, generation, waiting) — the server's CPU time per keystroke,
and — for the same prompts, rebuilt in this process with the server's own prompt builder — the time llama.cpp
(llama-cpp-python) takes to answer them with the same model and the same number of tokens, beside ckls's runtime
doing the same.

  python bench/latency.py --synth small                   # the latency-bar model shape
  python bench/latency.py --model m.gguf --files 8 --keys 200
  python bench/latency.py --synth small --soak 10000      # 10,000 requests: crash and RSS-growth check
  python bench/latency.py --model M --speculative-tokens 0  # without speculative decoding (the output reports
                                                          # "speculation": tokens per forward pass, accepted
                                                          # draft tokens per pass)
  python bench/latency.py --model M --tune REPO           # and again while the server fine-tunes on REPO
  python bench/latency.py --model M --workspace REPO [--retrieval]   # type files of REPO, the workspace; with
                                                          # --retrieval it is indexed from empty meanwhile and
                                                          # every prompt carries the retrieved windows
  python bench/latency.py --model M --workspace REPO --memory [--retrieval]  # the repository memory on too

--tune REPO: the server's workspace is REPO; the files are typed once as usual, then `ckls.tune.start` begins a
round on REPO (schedule --tune-schedule, default "always": training takes every gap between keystrokes, the
worst case; the shipped default "idle" waits for 3 s without typing) and the same files, at the same places, are
typed again while it trains. Both passes are reported, with the training steps taken during the second.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import sysconfig
import time

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # runs from a checkout; the server child gets the same path below
os.environ["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                                     if p])
import llama_peer  # noqa: E402  (bench/, beside this script)


# ---- inputs ---------------------------------------------------------------------------------------------------
def pick_files(n: int, seed: int, min_bytes: int = 6000, max_bytes: int = 60000, site: str | None = None) -> list[str]:
    """Real .py files from installed third-party packages (site-packages, or the tree `site`), ckls excluded."""
    site = site or sysconfig.get_paths()["purelib"]
    found = []
    for top in sorted(os.listdir(site)):
        if top.startswith(("ckls", "_", "pip", "setuptools")) or top.endswith((".dist-info", ".pth")):
            continue
        for dirpath, _, files in os.walk(os.path.join(site, top)):
            if "test" in dirpath:
                continue
            for f in files:
                if f.endswith(".py"):
                    p = os.path.join(dirpath, f)
                    if min_bytes <= os.path.getsize(p) <= max_bytes:
                        found.append(p)
    found.sort()
    rng = random.Random(seed)
    rng.shuffle(found)
    out = []
    for p in found:
        try:
            with open(p, encoding="utf-8") as fh:
                fh.read()
            out.append(p)
        except UnicodeDecodeError:
            continue
        if len(out) == n:
            break
    return out


def key_pauses(text: str, rng: random.Random) -> list[float]:
    """Seconds to wait before each character: ~110 ms median, slower after spaces and line ends, and sometimes a
    thinking pause (when an editor's suggestion would be read)."""
    out = []
    for ch in text:
        d = min(0.45, max(0.035, rng.lognormvariate(math.log(0.11), 0.35)))
        if ch in " \n" and rng.random() < 0.18:
            d += rng.uniform(0.3, 1.2)
        out.append(d)
    return out


def pct(xs, q):
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ---- client ---------------------------------------------------------------------------------------------------
class Client:
    def __init__(self, settings: dict):
        self.lc = LanguageClient("ckls-bench", "0")
        self.settings = settings
        self.version: dict[str, int] = {}

        @self.lc.feature(types.WORKSPACE_CONFIGURATION)
        def configuration(params):
            return [self.settings for _ in params.items]

        @self.lc.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def progress_create(params):
            return None

        @self.lc.feature(types.PROGRESS)
        def progress(params):
            pass

        @self.lc.feature(types.WINDOW_SHOW_MESSAGE)
        def show(params):
            print(f"[server] {params.message}", file=sys.stderr)

        @self.lc.feature(types.WINDOW_LOG_MESSAGE)
        def log(params):
            pass

    async def command(self, name: str):
        return await self.lc.workspace_execute_command_async(types.ExecuteCommandParams(command=name))

    async def start(self, threads: int, root: str | None = None):
        await self.lc.start_io(sys.executable, "-m", "ckls", "serve", "--threads", str(threads))
        caps = types.ClientCapabilities(
            workspace=types.WorkspaceClientCapabilities(configuration=True),
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities()),
            window=types.WindowClientCapabilities(work_done_progress=True))
        folders = [types.WorkspaceFolder(uri="file://" + root, name=os.path.basename(root))] if root else None
        await self.lc.initialize_async(types.InitializeParams(capabilities=caps, process_id=os.getpid(),
                                                              root_uri="file://" + root if root else None,
                                                              workspace_folders=folders))
        self.lc.initialized(types.InitializedParams())
        t0 = time.monotonic()
        while True:
            st = await self.stats()
            if st["model"] not in ("loading", "not loaded"):
                if not st["model"].startswith("loaded"):
                    raise SystemExit(f"server could not load the model: {st['model']}")
                return
            if time.monotonic() - t0 > 120:
                raise SystemExit("model did not load in 120 s")
            await asyncio.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.lc._server.pid

    async def stats(self) -> dict:
        return await self.lc.workspace_execute_command_async(types.ExecuteCommandParams(command="ckls.stats"))

    def open(self, uri: str, text: str):
        self.version[uri] = 1
        self.lc.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))

    def insert(self, uri: str, line: int, ch: int, text: str):
        self.version[uri] += 1
        pos = types.Position(line=line, character=ch)
        self.lc.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.version[uri]),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos),
                                                                    text=text)]))

    def request(self, uri: str, line: int, ch: int, invoked: bool = False):
        kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
        params = types.InlineCompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                              position=types.Position(line=line, character=ch),
                                              context=types.InlineCompletionContext(trigger_kind=kind))
        msg_id = f"r{time.monotonic_ns()}"
        fut = self.lc.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id)
        return msg_id, asyncio.wrap_future(fut)

    def cancel(self, msg_id: str):
        self.lc.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))

    async def stop(self):
        try:
            await asyncio.wait_for(self.lc.shutdown_async(None), 10)
            self.lc.exit(None)
        except Exception:
            pass
        await self.lc.stop()


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


async def type_file(c: Client, path: str, n_keys: int, rng: random.Random, res: dict, cold: bool,
                    pause_scale: float = 1.0, type_at_once: bool = False, tag: str = "") -> list:
    """Opens the file cut at a line start past its middle and re-types the next n_keys characters."""
    with open(path, encoding="utf-8") as f:
        full = f.read()
    lines = full.split("\n")
    start_line = max(1, min(len(lines) - 2, len(lines) // 2 + rng.randrange(-len(lines) // 5, len(lines) // 5 + 1)))
    head = "\n".join(lines[:start_line]) + "\n"
    rest = "\n".join(lines[start_line:])
    # whole lines are re-typed on a fresh empty line, so nothing sits right of the cursor (as when writing code)
    cut = rest.find("\n", n_keys)
    cut = len(rest) if cut < 0 else cut
    typed, tail = rest[:cut], rest[cut:]
    uri = "file://" + path + f".bench{rng.randrange(1 << 30)}{tag}"  # a fresh document every run
    c.open(uri, head + tail)
    line, col = start_line, 0
    positions = []
    if cold:  # the first request on a never-seen ~1,000-token prompt
        t0 = time.perf_counter()
        _, fut = c.request(uri, line, col, invoked=True)
        r = await asyncio.wait_for(fut, 120)
        res["cold_ms"].append((time.perf_counter() - t0) * 1e3)
        st = await c.stats()
        last = dict(st.get("engine", {}).get("last", {}))
        last["non_empty"] = bool(r and r.items)
        # the user reads the suggestion: wait until the full prompt is evaluated and its suggestion made
        # (--type-at-once: the user types straight on; the typing figures then show how long answers stay reduced)
        while not type_at_once and st.get("engine", {}).get("prefill_pending") and time.perf_counter() - t0 < 120:
            await asyncio.sleep(0.04)  # (each poll is a request the server handles beside the model: not too often)
            st = await c.stats()
        if not type_at_once:
            res["full_ms"].append((time.perf_counter() - t0) * 1e3)
            _, fut = c.request(uri, line, col, invoked=True)  # asked again there: the full-context answer
            r = await asyncio.wait_for(fut, 120)
            item = r.items[0] if r and r.items else None
            last["again"] = item.command.arguments[0].get("context") if item and item.command else "empty"
            last["prefill"] = dict(st.get("engine", {}).get("last_prefill") or {})
        res["cold_detail"].append(last)
    pending: tuple[str, asyncio.Future, float, bool] | None = None
    pauses = key_pauses(typed, rng)

    def on_done(f, t_sent, first):
        if f.cancelled() or f.exception() is not None:
            res["cancelled"] += 1
            return
        ms = (time.perf_counter() - t_sent) * 1e3
        res["warm_ms"].append(ms)
        res["warm_by_file"].setdefault(os.path.basename(path), []).append(ms)
        r = f.result()
        if r and r.items:
            res["non_empty"] += 1
            cmd = r.items[0].command
            if cmd and cmd.arguments and cmd.arguments[0].get("context") == "reduced":
                res["warm_reduced"] += 1

    for ch, pause in zip(typed, pauses):
        await asyncio.sleep(pause * pause_scale)
        if pending is not None and not pending[1].done():
            c.cancel(pending[0])
        c.insert(uri, line, col, ch)
        if ch == "\n":
            line, col = line + 1, 0
        else:
            col += utf16_len(ch)
        res["keys"] += 1
        msg_id, fut = c.request(uri, line, col)
        t_sent = time.perf_counter()
        fut.add_done_callback(lambda f, t=t_sent: on_done(f, t, False))
        pending = (msg_id, fut, t_sent, False)
        positions.append((uri, line, col))
    if pending is not None:
        try:
            await asyncio.wait_for(asyncio.shield(pending[1]), 5)
        except Exception:
            pass
    c.lc.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    return positions


# ---- peer comparison ------------------------------------------------------------------------------------------
def compare_runtimes(model_path: str, files: list[str], settings: dict, n_prompts: int, threads: int,
                     seed: int) -> dict:
    """The same prompts (built by ckls's pipeline) answered by ckls's runtime and by llama.cpp, typing-style:
    each prompt extends the previous by one character, so both can reuse their cached prefix."""
    from ckls.config import Settings
    from ckls.completion.context import build_context
    from ckls.completion.documents import Document
    from ckls.completion.prompt import PromptBuilder
    from ckls.runtime import load_model

    s = Settings().merged(settings)[0]
    rng = random.Random(seed)
    prompts = []
    model = load_model(model_path, n_ctx=s.n_ctx, n_threads=threads)
    b = PromptBuilder(model.tokenizer, s.prefix_tokens, s.suffix_tokens, 0, s.fim_order)
    per_file = max(1, n_prompts // max(1, len(files)))
    for path in files:
        text = open(path, encoding="utf-8").read()
        lines = text.split("\n")
        ln = len(lines) // 2 + rng.randrange(-len(lines) // 5, len(lines) // 5 + 1)
        ln = max(1, min(len(lines) - 2, ln))
        for k in range(min(per_file, len(lines[ln]) + 1)):
            doc = Document("file://" + path, "\n".join(lines[:ln]) + "\n" + lines[ln][:k] + "\n" +
                           "\n".join(lines[ln + 1:]), "python")
            before, after, first, l2, c2 = doc.window(ln, k, s.prefix_tokens * 6, s.suffix_tokens * 6)
            ctx = build_context(doc.uri, "python", before, after, l2, c2, first, None, 0)
            prompts.append(b.build(ctx).tokens)
    n_gen = 16
    out = {"n_prompts": len(prompts), "n_gen": n_gen}
    t = []
    for p in prompts:
        t0 = time.perf_counter()
        for i, _ in enumerate(model.generate(p, n_gen, stop_ids=[])):
            pass
        t.append((time.perf_counter() - t0) * 1e3)
    out["ckls_ms"] = {"p50": pct(t, 0.5), "p95": pct(t, 0.95)}
    model.close()
    llama_cpp = llama_peer.load(required=False)
    if llama_cpp is None:
        out["llama_cpp"] = "llama-cpp-python not installed"
        return out
    llm = llama_cpp.Llama(model_path=model_path, n_ctx=s.n_ctx, n_threads=threads, n_batch=512, verbose=False)
    t = []
    for p in prompts:
        t0 = time.perf_counter()
        for i, _ in enumerate(llm.generate(p, top_k=1, temp=0.0, reset=True)):
            if i + 1 >= n_gen:
                break
        t.append((time.perf_counter() - t0) * 1e3)
    out["llama_cpp_ms"] = {"p50": pct(t, 0.5), "p95": pct(t, 0.95)}
    return out


# ---- main -----------------------------------------------------------------------------------------------------
async def run(args) -> dict:
    settings = {"modelPath": args.model, "threads": args.threads}
    if args.latency_ms:
        settings["latencyMs"] = args.latency_ms
    if args.no_quick:
        settings["quickStart"] = False
    if args.speculative_tokens is not None:
        settings["speculativeTokens"] = args.speculative_tokens
    rng = random.Random(args.seed)
    if (args.retrieval or args.memory) and not args.workspace:
        raise SystemExit("--retrieval and --memory need --workspace REPO")
    files = pick_files(args.files, args.seed, site=os.path.abspath(args.workspace) if args.workspace else None)
    if not files:
        raise SystemExit("no third-party source files found in site-packages")
    if args.tune:
        import tempfile

        settings.update({"tuneSchedule": args.tune_schedule, "tuneBudgetS": 3600,
                         "tuneDir": tempfile.mkdtemp(prefix="ckls-bench-tune-")})
    if args.workspace:  # both named either way (the memory is on by default), the index built from empty
        import tempfile

        settings["retrieval"] = bool(args.retrieval)
        settings["memoryEnabled"] = bool(args.memory)
        os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="ckls-bench-cache-")  # an empty index: built now
    c = Client(settings)
    root = args.tune or args.workspace
    await c.start(args.threads, os.path.abspath(root) if root else None)
    res = new_res()
    load0 = os.getloadavg()[0]
    cpu0 = proc_cpu_s(c.pid)
    rss0 = proc_rss_mb(c.pid)
    t0 = time.monotonic()
    try:
        if args.soak:
            # many requests back to back, each after an edit; the RSS must stay flat
            k = 0
            while res["keys"] < args.soak:
                for f in files:
                    await type_file(c, f, min(200, args.soak - res["keys"]), rng, res, cold=False,
                                    pause_scale=args.soak_pause)
                    if res["keys"] >= args.soak:
                        break
                k += 1
                if k == 1:
                    rss0 = proc_rss_mb(c.pid)  # after the first pass: caches and the model are warm
        else:
            for f in files:
                await type_file(c, f, args.keys, rng, res, cold=True, type_at_once=args.type_at_once)
        if args.tune:
            training = await type_while_training(c, files, args)
        st = await c.stats()
        index_at_end = st.get("index")
        cpu = proc_cpu_s(c.pid) - cpu0
        rss1 = proc_rss_mb(c.pid)
    finally:
        await c.stop()
    out = {
        "model": args.model, "threads": args.threads, "files": [os.path.relpath(f, sysconfig.get_paths()["purelib"])
                                                               for f in files],
        "loadavg_1min": {"start": load0, "end": os.getloadavg()[0]}, "quick_start": not args.no_quick,
        "keystrokes": res["keys"], "answered": len(res["warm_ms"]), "cancelled": res["cancelled"],
        "non_empty": res["non_empty"], "wall_s": round(time.monotonic() - t0, 1),
        "warm_ms": {"p50": pct(res["warm_ms"], 0.5), "p95": pct(res["warm_ms"], 0.95),
                    "mean": statistics.fmean(res["warm_ms"]) if res["warm_ms"] else None},
        "warm_by_file": {f: {"p50": round(pct(v, 0.5), 1), "p95": round(pct(v, 0.95), 1), "n": len(v)}
                         for f, v in res["warm_by_file"].items()},
        "warm_reduced_context": res["warm_reduced"], "type_at_once": args.type_at_once,
        "cold_ms": {"p50": pct(res["cold_ms"], 0.5), "max": max(res["cold_ms"]) if res["cold_ms"] else None,
                    "all": [round(x, 1) for x in res["cold_ms"]]},
        "cold_full_ready_ms": {"p50": pct(res["full_ms"], 0.5), "max": max(res["full_ms"]) if res["full_ms"] else None,
                               "all": [round(x, 1) for x in res["full_ms"]]},
        "cold_detail": res["cold_detail"],
        "cold_profile": cold_profile(res["cold_detail"]),
        "cpu_ms_per_key": cpu * 1e3 / max(1, res["keys"]),
        "rss_mb": {"start": rss0, "end": rss1, "growth": rss1 - rss0},
        "server": {k: st.get(k) for k in ("cache_hits", "superseded", "timeouts", "model_ms", "latency_ms",
                                          "answers_full", "answers_reduced", "full_after_reduced",
                                          "idle_prefills", "engine")},
    }
    eng = st.get("engine") or {}
    if eng.get("gen_passes"):  # speculative decoding (settings speculative_tokens): what the drafts saved
        out["speculation"] = {
            "tokens_per_pass": round(eng["gen_tokens"] / eng["gen_passes"], 3),
            "accepted_per_step": round(eng["accepted"] / eng["gen_passes"], 3),
            "drafted_accepted": round(eng["accepted"] / eng["drafted"], 3) if eng.get("drafted") else 0.0,
            **{k: eng.get(k) for k in ("gen_tokens", "gen_passes", "drafted", "accepted")}}
    if args.tune:
        out["while_training"] = training
    if args.retrieval or args.memory:
        out["index_at_end"] = index_at_end
    return out


def cold_profile(detail: list[dict]) -> dict:
    """Medians over the cold starts answered from a reduced prompt: where the time to the first suggestion went
    (building both prompts, the reduced prompt's evaluation, its generation) and where the time to the full-context
    suggestion went (its prompt built, chunks evaluated, chunks lost to requests, generation, waiting)."""
    reduced = [d for d in detail if d.get("context") == "reduced"]
    out = {"n": len(reduced)}
    for k in ("build_ms", "prompt_ms", "gen_ms"):
        xs = [d[k] for d in reduced if k in d]
        out["first_" + k] = round(statistics.median(xs), 1) if xs else None
    pre = [d["prefill"] for d in reduced if d.get("prefill")]
    for k in ("tokens", "build_ms", "eval_ms", "chunks", "lost_ms", "lost", "gen_ms", "wait_ms", "total_ms"):
        xs = [p[k] for p in pre if k in p]
        out["full_" + k] = round(statistics.median(xs), 1) if xs else None
    return out


def new_res() -> dict:
    return {"warm_ms": [], "warm_by_file": {}, "cold_ms": [], "full_ms": [], "cold_detail": [], "keys": 0,
            "cancelled": 0, "non_empty": 0, "warm_reduced": 0}


async def type_while_training(c: Client, files: list[str], args) -> dict:
    """The typing pass again, at the same places (same seed), while a tuning round trains on the workspace."""
    st = await c.command("ckls.tune.start")
    if st.get("error") or not st.get("running"):
        raise SystemExit(f"tuning did not start: {st.get('error')}")
    t0 = time.monotonic()
    while True:  # training proper, past the scan and the held-out evaluation before the first step
        st = await c.command("ckls.tune.status")
        if (st.get("progress") or {}).get("step", 0) >= 1:
            break
        if not st["running"] or time.monotonic() - t0 > 600:
            raise SystemExit(f"tuning ended or stalled before its first step: {st.get('error') or st.get('summary')}")
        await asyncio.sleep(0.2)
    step0, yields0 = st["progress"]["step"], st.get("yields", 0)
    res = new_res()
    rng = random.Random(args.seed)
    for f in files:
        await type_file(c, f, args.keys, rng, res, cold=True, type_at_once=args.type_at_once, tag="t")
    st = await c.command("ckls.tune.status")
    still = st["running"]
    await c.command("ckls.tune.stop")
    return {"schedule": args.tune_schedule, "repo": os.path.abspath(args.tune), "still_training_at_end": still,
            "steps_during": (st.get("progress") or {}).get("step", 0) - step0,
            "yields_during": st.get("yields", 0) - yields0,
            "keystrokes": res["keys"], "answered": len(res["warm_ms"]), "cancelled": res["cancelled"],
            "warm_ms": {"p50": pct(res["warm_ms"], 0.5), "p95": pct(res["warm_ms"], 0.95)},
            "cold_ms": {"p50": pct(res["cold_ms"], 0.5), "max": max(res["cold_ms"]) if res["cold_ms"] else None},
            "cold_full_ready_ms": {"p50": pct(res["full_ms"], 0.5)}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="GGUF model (default: --synth small)")
    ap.add_argument("--synth", default=None, help="write and use a synthetic model of this shape (tiny/mini/small)")
    ap.add_argument("--type", default="q8_0", help="weight type of the synthetic model (default q8_0)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--keys", type=int, default=150, help="characters re-typed per file")
    ap.add_argument("--latency-ms", type=int, default=0, help="server time cap (default: the server's)")
    ap.add_argument("--no-quick", action="store_true", help="quickStart off: cold prompts answered in full")
    ap.add_argument("--speculative-tokens", type=int, default=None,
                    help="the server's speculativeTokens (default: its own; 0: no speculative decoding)")
    ap.add_argument("--type-at-once", action="store_true",
                    help="type right after the cold answer instead of waiting for the full-context one")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--soak", type=int, default=0, help="send this many requests and check RSS growth")
    ap.add_argument("--soak-pause", type=float, default=0.1, help="soak: scale of the typing pauses")
    ap.add_argument("--no-peer", action="store_true", help="skip the llama.cpp comparison")
    ap.add_argument("--peer-prompts", type=int, default=40)
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--tune", metavar="REPO", help="type again while the server fine-tunes on REPO (see above)")
    ap.add_argument("--tune-schedule", default="always", choices=["always", "idle"])
    ap.add_argument("--workspace", metavar="REPO", help="the files typed come from REPO, the server's workspace "
                    "(retrieval and the memory off unless named below)")
    ap.add_argument("--retrieval", action="store_true", help="retrieval on: the workspace is indexed from empty in "
                    "the background while its files are typed, and every prompt carries the retrieved windows")
    ap.add_argument("--memory", action="store_true", help="the repository memory on (memoryEnabled): built from "
                    "the workspace's index (from empty, in the background) and mixed into every generation")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    print(f"seed {args.seed}", file=sys.stderr)
    if args.model is None:
        shape = args.synth or "small"
        from ckls.runtime.synth import synth_model

        cache = os.path.join(os.path.expanduser("~/.cache/ckls/bench"))
        os.makedirs(cache, exist_ok=True)
        args.model = os.path.join(cache, f"synth-qwen2-{shape}-{args.type}.gguf")
        if not os.path.exists(args.model):
            synth_model(args.model, arch="qwen2", shape=shape, type=args.type, seed=0)
    out = asyncio.run(run(args))
    if not args.no_peer and not args.soak:
        files = pick_files(args.files, args.seed, site=os.path.abspath(args.workspace) if args.workspace else None)
        out["peer"] = compare_runtimes(args.model, files, {"modelPath": args.model}, args.peer_prompts,
                                       args.threads, args.seed)
    print(json.dumps(out, indent=2, default=float))
    if args.soak:
        ok = out["rss_mb"]["growth"] < 50
        print(f"soak: {out['keystrokes']} requests, RSS growth {out['rss_mb']['growth']:.1f} MB "
              f"({'ok' if ok else 'OVER 50 MB'})", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
