"""The agent loop: a Messages API conversation with tool use, through the anthropic SDK.

The model gets the contract, the Python original and the skill list; it reads skills, compiles, runs the
judge's public plan, benchmarks, and ends with submit_kernel. A run stops on submit, refusal, a response cut
at max_tokens, max_turns, the token budget, cancellation or an API error. Without a submission the result
carries the last candidate that passed the public plan (else the last that compiled), flagged by its stop
reason. The verdict is not the model's: the caller runs ckls.verify on the source.

Errors: the SDK retries 429, 5xx, timeouts and dropped connections itself (max_retries, exponential backoff,
honouring retry-after); an error event in the middle of a stream (overloaded) is retried here the same way, and
so is a stream that breaks (cut off before message_stop, data that is not JSON or not UTF-8, the connection lost
or stalled while reading). What is left is one sentence: what failed, whether it was retried, what to do.
The API key comes from AgentConfig.api_key or ANTHROPIC_API_KEY. Everything that leaves the loop (each turn
sent to the API, the transcript, progress lines, notes, error text) passes through one Redactor (redact.py):
the key, secret-looking environment values, secret files and key shapes come out as `[redacted: ...]`. The
model's own tool calls are masked on arrival, so the tools, the transcript and the result see the same text.
"""
from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .redact import Redactor, redactor
from .skills import Skill, default_skills_dir, load_skills
from .task import KernelTask
from .tools import ToolResult, Workbench, tool_definitions

STOPS = ("submitted", "max_turns", "budget", "refusal", "max_tokens", "error", "cancelled")

# US$ per million tokens: input, output, cache write (5-minute), cache read. Looked up by the model id without
# its date suffix (claude-sonnet-4-5-20250929 -> claude-sonnet-4-5); a model not listed has no estimate.
PRICES = {
    "claude-opus-5-5": (4.0, 20.0, 5.0, 0.40),
    "claude-sonnet-5-5": (2.0, 10.0, 2.50, 0.20),
    "claude-sonnet-5": (2.0, 10.0, 2.50, 0.20),
    "claude-sonnet-4-6": (3.0, 15.0, 3.75, 0.30),
    "claude-opus-4-5": (5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-1": (15.0, 75.0, 18.75, 1.50),
    "claude-opus-4-0": (15.0, 75.0, 18.75, 1.50),
    "claude-sonnet-4-5": (3.0, 15.0, 3.75, 0.30),
    "claude-sonnet-4-0": (3.0, 15.0, 3.75, 0.30),
    "claude-3-7-sonnet": (3.0, 15.0, 3.75, 0.30),
    "claude-haiku-4-5": (1.0, 5.0, 1.25, 0.10),
    "claude-3-5-haiku": (0.80, 4.0, 1.0, 0.08),
}


@dataclass
class AgentConfig:
    model: str = "claude-sonnet-5-5"  # the current Sonnet (claude-sonnet-4-5 reaches end of life 2026-11-30)
    max_turns: int = 12
    max_tokens: int = 8192                 # per response
    budget_tokens: int = 400_000           # input (incl. cache reads/writes) + output over the whole run
    base_url: str | None = None
    api_key: str | None = None             # None -> ANTHROPIC_API_KEY
    skills_dir: Path = field(default_factory=default_skills_dir)
    skills: list[str] | None = None        # None = all, [] = none
    timeout_s: float = 120.0
    max_retries: int = 4

    def __repr__(self) -> str:  # the key never shows up in logs
        return (f"AgentConfig(model={self.model!r}, max_turns={self.max_turns}, max_tokens={self.max_tokens}, "
                f"budget_tokens={self.budget_tokens}, base_url={self.base_url!r}, api_key="
                f"{'set' if self.api_key else 'None'}, skills={self.skills!r})")


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def add(self, u) -> None:
        for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
            setattr(self, k, getattr(self, k) + int(getattr(u, k, 0) or 0))

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_input_tokens + \
            self.cache_read_input_tokens

    def cost_usd(self, model: str) -> float | None:
        """Estimated cost at list prices; None for a model not in the table."""
        base = re.sub(r"-(\d{8}|latest)$", "", model)
        p = PRICES.get(base) or PRICES.get(base + "-0")  # claude-opus-4-20250514 is Opus 4.0
        if p is None:
            return None
        pi, po, pw, pr = p
        return (self.input_tokens * pi + self.output_tokens * po + self.cache_creation_input_tokens * pw
                + self.cache_read_input_tokens * pr) / 1e6

    def describe(self, model: str) -> str:
        c = self.cost_usd(model)
        cost = f"~${c:.4f}" if c is not None else f"cost unknown (no prices for {model})"
        return (f"tokens: {self.input_tokens} in, {self.output_tokens} out, {self.cache_creation_input_tokens} "
                f"cache write, {self.cache_read_input_tokens} cache read; {cost}")


@dataclass
class AgentResult:
    source: str | None
    lang: str
    stop: str
    turns: int
    usage: Usage
    error: str | None
    transcript: list[dict]
    notes: str = ""
    submitted: bool = False

    def to_dict(self) -> dict:
        return {"source": self.source, "lang": self.lang, "stop": self.stop, "turns": self.turns,
                "usage": self.usage.__dict__, "error": self.error, "notes": self.notes,
                "submitted": self.submitted}


# ---- prompts -------------------------------------------------------------------------------------------------
def _convention(lang: str, spec) -> str:
    if lang == "c":
        return ("Write one self-contained C11 file (gcc -O3 -march=native -fopenmp -std=gnu11) that defines\n"
                f"    {spec.c_prototype()}\nwith external linkage. Include <stdint.h>. No main, no I/O, no threads "
                "other than OpenMP, no calls outside libc/libm/OpenMP (the judge rejects other imports).")
    return ("Write one self-contained CUDA file (nvcc -O3 -shared, machine code for the GPU present) whose entry "
            f"point is the host launcher\n    extern \"C\" {spec.c_prototype()}\nIts array pointers are DEVICE "
            "memory the judge allocated (same offsets, strides and aliasing as in C: not necessarily 16-byte "
            "aligned); sizes and scalars come by value. The launcher only launches: work goes on the default "
            "stream 0 (it may return before the work ends), no host copies, no device reset; it handles every "
            "size including 0 (no zero-sized grids) and frees any scratch it allocates. Include <stdint.h> and "
            "<cuda_runtime.h>.")


def system_prompt(task: KernelTask, lang: str, skills: list[Skill]) -> list[dict]:
    spec = task.spec
    parts = [
        "You are ckls's kernel engineer. You turn a Python function into a fast, exactly equivalent "
        f"{'C' if lang == 'c' else 'CUDA'} kernel. An independent judge decides whether it is correct: it builds "
        "your code, runs it against the Python original on edge sizes, odd alignments, special values and random "
        "cases, re-runs it under sanitizers (ASan/UBSan for C, compute-sanitizer for CUDA), checks inputs are not modified and nothing is written out of bounds, "
        "and benchmarks it. Correctness first, then speed.",
        "Contract (the judge calls exactly this):\n" + spec.describe(),
        _convention(lang, spec),
        "Sizes come first as int64_t, in the order shown; arrays are row-major and contiguous unless strides "
        "are listed; an argument marked 'may be the same memory as' can alias that input. Each output's "
        "tolerance is relative to the original computed in float64.",
        "Work with the tools: compile, run_public_tests (until PASS), optionally benchmark, then submit_kernel "
        "with the complete source. Keep replies short; put code only in tool calls.",
    ]
    if skills:
        parts.append("Skills (read the relevant ones first with read_skill):\n" +
                     "\n".join(f"- {s.name}: {s.description}" for s in skills))
    return [{"type": "text", "text": "\n\n".join(parts), "cache_control": {"type": "ephemeral"}}]


def user_prompt(task: KernelTask) -> str:
    out = [f"Python original ({task.py_path}::{task.func_name}):\n```python\n{task.source}\n```"]
    if task.notes:
        out.append("Assumptions behind the contract:\n" + "\n".join(f"- {n}" for n in task.notes))
    if task.call_sites:
        out.append("How the workspace calls it:\n" + "\n".join(f"- {c}" for c in task.call_sites[:6]))
    out.append("Write the kernel.")
    return "\n\n".join(out)


# ---- the loop ------------------------------------------------------------------------------------------------
class _Stop(Exception):
    def __init__(self, stop: str, error: str | None = None):
        super().__init__(error or stop)
        self.stop, self.error = stop, error


class _BrokenStream(Exception):
    """A streamed answer that could not be read to its end; `what` says how, in words."""

    def __init__(self, what: str, turn: int = 0, retries: int = 0):
        super().__init__(what)
        self.what, self.turn, self.retries = what, turn, retries

    def sentence(self) -> str:
        tried = (f"retried {self.retries} time{'s' if self.retries != 1 else ''}, every try broke" if self.retries
                 else "not retried (max_retries is 0)")
        return (f"the API's streamed answer broke off in turn {self.turn}: {self.what}; {tried}. Run it again; "
                "if it keeps happening, check what sits between ckls and the API (a proxy, --base-url)")


def _broken_what(e: BaseException | None, cfg) -> str:
    import anthropic

    if e is None:
        return "the stream ended before the message was complete (no message_stop)"
    if isinstance(e, UnicodeDecodeError):
        return "the stream carried bytes that are not UTF-8"
    if isinstance(e, json.JSONDecodeError):
        return "the stream carried an event whose data is not valid JSON"
    if isinstance(e, anthropic.APITimeoutError):
        return f"the stream stalled (no data within {cfg.timeout_s:g} s)"
    if isinstance(e, anthropic.APIConnectionError):
        return "the connection was lost while the answer was streaming"
    return "the stream's events were malformed or out of order"


def _describe_api_error(e, cfg: AgentConfig) -> str:
    import anthropic

    if isinstance(e, anthropic.AuthenticationError):
        return "authentication failed (401): check ANTHROPIC_API_KEY or the key set in the editor"
    if isinstance(e, anthropic.PermissionDeniedError):
        return "permission denied (403) for this API key"
    if isinstance(e, anthropic.NotFoundError):
        return f"not found (404): is the model name {cfg.model!r} right?"
    if isinstance(e, anthropic.RateLimitError):
        return f"rate limited (429), still after {cfg.max_retries} retries; try again later"
    if isinstance(e, anthropic.APITimeoutError):
        return f"the API did not answer within {cfg.timeout_s:g} s ({cfg.max_retries} retries)"
    if isinstance(e, anthropic.APIConnectionError):
        return f"cannot reach the API at {cfg.base_url or 'api.anthropic.com'} ({cfg.max_retries} retries)"
    if isinstance(e, anthropic.APIStatusError):
        kind = _error_type(e)
        if e.status_code >= 500 or kind in ("overloaded_error", "api_error"):
            return f"the API failed ({e.status_code} {kind or ''}) after {cfg.max_retries} retries".replace("  ", " ")
        return f"the API refused the request ({e.status_code} {kind or ''}): {getattr(e, 'message', e)}"
    return f"{type(e).__name__}: {e}"


def _error_type(e) -> str | None:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return err.get("type")
    return None


def _mid_stream_retryable(e) -> bool:
    import anthropic

    return isinstance(e, anthropic.APIStatusError) and e.status_code < 400 and \
        _error_type(e) in ("overloaded_error", "api_error", "rate_limit_error")


def _block_dict(b, red: Redactor) -> dict:
    """A content block as it is kept and sent back; text and tool input masked (thinking blocks must go back
    exactly as they came, signed)."""
    d = b.model_dump(exclude_none=True) if hasattr(b, "model_dump") else dict(b)
    keep = {"text": ("type", "text"), "tool_use": ("type", "id", "name", "input"),
            "thinking": ("type", "thinking", "signature"), "redacted_thinking": ("type", "data")}
    out = {k: d[k] for k in keep.get(d.get("type"), d.keys()) if k in d}
    if out.get("type") == "text":
        out["text"] = red(out["text"])
    elif out.get("type") == "tool_use":
        out["input"] = red.obj(out.get("input") or {})
    return out


def _with_cache_mark(messages: list[dict]) -> list[dict]:
    """A cache breakpoint on the newest user turn only (the API allows four in all)."""
    out = []
    for i, m in enumerate(messages):
        content = m["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        content = [{k: v for k, v in c.items() if k != "cache_control"} for c in content]
        if i == len(messages) - 1 and content:
            content[-1] = dict(content[-1], cache_control={"type": "ephemeral"})
        out.append({"role": m["role"], "content": content})
    return out


def unavailable(config: AgentConfig) -> str | None:
    """Why the agent cannot run at all (the SDK is not installed, no API key), or None: checked before anything
    is asked of the user."""
    try:
        import anthropic  # noqa: F401
    except ImportError:
        return NO_SDK
    if not (config.api_key or os.environ.get("ANTHROPIC_API_KEY")):
        return NO_KEY
    return None


NO_SDK = "the kernel command needs the anthropic package: pip install anthropic"
NO_KEY = "no API key: set ANTHROPIC_API_KEY (or the key in the editor's ckls settings)"


def run_agent(task: KernelTask, lang: str, config: AgentConfig, progress=None, cancel=None) -> AgentResult:
    """Asks the model for a kernel; progress(str) gets one-line updates; cancel is a threading.Event."""
    try:
        import anthropic
    except ImportError:
        return AgentResult(None, lang, "error", 0, Usage(), NO_SDK, [])
    if lang not in ("c", "cuda"):
        raise ValueError(f"lang must be c or cuda, not {lang!r}")
    sink = progress or (lambda _m: None)
    cancel = cancel or threading.Event()
    task = task.with_language(lang)
    usage = Usage()
    transcript: list[dict] = []
    key = config.api_key or os.environ.get("ANTHROPIC_API_KEY")
    red = redactor(key, task.py_path)
    say = lambda m, limit=None: sink(red(m)[:limit])  # masked first, then cut  # noqa: E731
    if not key:
        return AgentResult(None, lang, "error", 0, usage, NO_KEY, transcript)
    try:
        skills = load_skills(config.skills_dir, config.skills)
    except Exception as e:
        return AgentResult(None, lang, "error", 0, usage, f"skills: {e}", transcript)
    bench = Workbench(task, lang, skills, redact=red)
    client = anthropic.Anthropic(api_key=key, base_url=config.base_url, timeout=config.timeout_s,
                                 max_retries=config.max_retries)
    system = system_prompt(task, lang, skills)
    tools = tool_definitions(skills, lang)
    tools[-1] = dict(tools[-1], cache_control={"type": "ephemeral"})
    messages: list[dict] = [{"role": "user", "content": red(user_prompt(task))}]
    transcript.append(messages[0])
    turns, stop, error = 0, "max_turns", None
    say(f"asking {config.model} for a {lang.upper()} kernel for {task.func_name} "
        f"({len(skills)} skills, at most {config.max_turns} turns)")
    try:
        while turns < config.max_turns:
            if cancel.is_set():
                raise _Stop("cancelled")
            if usage.total >= config.budget_tokens:
                raise _Stop("budget", f"token budget spent ({usage.total} of {config.budget_tokens})")
            turns += 1
            msg = _one_turn(client, config, system, tools, messages, turns, say, cancel, usage)
            content = [_block_dict(b, red) for b in msg.content]
            messages.append({"role": "assistant", "content": content})
            transcript.append(messages[-1])
            if msg.stop_reason == "refusal":
                raise _Stop("refusal", "the model declined this request (stop_reason refusal)")
            if msg.stop_reason == "max_tokens":
                raise _Stop("max_tokens", f"a response reached max_tokens ({config.max_tokens}) before it ended; "
                            "raise --max-tokens")
            uses = [b for b in content if b["type"] == "tool_use"]
            if not uses:
                messages.append({"role": "user", "content": "Continue with the tools; end with submit_kernel."})
                transcript.append(messages[-1])
                continue
            results, submitted = [], False
            for u in uses:
                if cancel.is_set():
                    raise _Stop("cancelled")
                say(f"turn {turns}: {u['name']}" + (f" {u['input'].get('name', '')}" if u["name"] == "read_skill"
                                                    else ""))
                r: ToolResult = bench.run(u["name"], u.get("input") or {})
                first = r.text.splitlines()[0] if r.text else ""
                say(f"turn {turns}: {u['name']} -> {first}", 180)
                results.append({"type": "tool_result", "tool_use_id": u["id"], "content": red(r.text),
                                **({"is_error": True} if r.is_error else {})})
                submitted = submitted or r.submitted
            messages.append({"role": "user", "content": results})
            transcript.append(messages[-1])
            if submitted:
                raise _Stop("submitted")
        raise _Stop("max_turns", f"no submission after {config.max_turns} turns")
    except _Stop as s:
        stop, error = s.stop, s.error
    except _BrokenStream as e:
        stop, error = "error", e.sentence()
    except anthropic.APIError as e:
        stop, error = "error", _describe_api_error(e, config)
    except Exception as e:  # anything else is a bug in ckls; say what it was, keep the key out
        stop, error = "error", (f"ckls failed inside the agent loop ({type(e).__name__}: {e or 'no message'}); "
                                "please report it with the --transcript file")
    error = red(error) if error else None
    source = bench.submitted or bench.last_passed or bench.last_compiled
    if stop != "submitted" and source:
        say(f"no submission ({stop}); keeping the last candidate that "
            f"{'passed the public tests' if source is bench.last_passed else 'compiled'}")
    say(usage.describe(config.model))
    return AgentResult(source, lang, stop, turns, usage, error, transcript, red(bench.notes), stop == "submitted")


def _one_turn(client, cfg, system, tools, messages, turn, say, cancel, usage):
    """One streamed response; a stream that breaks (a retryable error event, or unreadable: cut off, garbled,
    the connection lost) is retried with backoff."""
    attempt = 0
    while True:
        try:
            return _stream(client, cfg, system, tools, messages, turn, say, cancel, usage)
        except Exception as e:
            broken = isinstance(e, _BrokenStream)
            if not (broken or _mid_stream_retryable(e)):
                raise
            if attempt >= cfg.max_retries:
                if broken:
                    e.turn, e.retries = turn, attempt
                raise
            attempt += 1
            delay = min(0.5 * 2 ** (attempt - 1), 8.0)
            say(f"turn {turn}: the stream broke ({e.what if broken else _error_type(e)}); retry {attempt} of "
                f"{cfg.max_retries} in {delay:.1f} s")
            if cancel.wait(delay):
                raise _Stop("cancelled")


def _stream(client, cfg, system, tools, messages, turn, say, cancel, usage):
    """One streamed response. Errors of the request itself come as the SDK's (it retried them); a stream that
    cannot be read to its end becomes _BrokenStream, an error event stays the SDK's APIStatusError."""
    import anthropic

    line, complete = "", False
    with client.messages.stream(model=cfg.model, max_tokens=cfg.max_tokens, system=system, tools=tools,
                                messages=_with_cache_mark(messages)) as stream:
        try:
            for ev in stream:
                if cancel.is_set():
                    raise _Stop("cancelled")
                if ev.type == "text":
                    line += ev.text
                    while "\n" in line:
                        head, line = line.split("\n", 1)
                        if head.strip():
                            say(f"turn {turn}: {head.strip()}", 210)
                elif ev.type == "content_block_start" and getattr(ev.content_block, "type", "") == "tool_use":
                    say(f"turn {turn}: writing {ev.content_block.name} call")
                elif ev.type == "message_stop":
                    complete = True
            msg = stream.get_final_message()
        except (_Stop, anthropic.APIStatusError):
            raise
        except Exception as e:  # the SDK could not read the stream: cut, garbled, connection lost or stalled
            raise _BrokenStream(_broken_what(e, cfg)) from e
        if not complete or msg.stop_reason is None:
            raise _BrokenStream(_broken_what(None, cfg))
    if line.strip():
        say(f"turn {turn}: {line.strip()}", 210)
    usage.add(msg.usage)
    return msg


def result_summary(res: AgentResult, model: str) -> str:
    head = f"agent: {res.stop} after {res.turns} turn(s)"
    if res.error:
        head += f" - {res.error}"
    return head + "\n" + res.usage.describe(model)


def transcript_json(res: AgentResult) -> str:
    return json.dumps(res.transcript, indent=1)

