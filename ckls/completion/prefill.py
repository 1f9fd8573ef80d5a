"""What the engine knows about its own speed, and the background work it does between requests.

Meter: prompt throughput and per-token step time measured on this machine (smoothed, so a busy machine or a
training round is reflected within a few evaluations); the engine uses it to tell whether a prompt can be
evaluated within the latency cap, and to size the reduced prompt that answers when it cannot.

Prefill: one piece of background work: evaluate a prompt (or its head) into the main KV cache in chunks, then,
for a request that was answered from a reduced prompt, generate the full-context suggestion. A real request raises
its cancel flag and takes the model within one layer step, losing the chunk in progress; so while the user types,
chunks are sized to end before the next keystroke is due (chunk_tokens), and in a pause they are large."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from ckls.completion.context import Context
from ckls.runtime import CancelFlag

CHUNK_MIN, CHUNK_MAX = 16, 256   # tokens per background evaluation: a request cancels the chunk in progress
LINE_STEPS = 16      # generation steps a one-line reduced answer is given room for
QUICK_SHARE = 0.7    # of the cap left after those steps, the part the reduced prompt may take (estimates err)
QUICK_MIN, QUICK_MAX = 48, 512


class Meter:
    def __init__(self, tok_s: float = 500.0, step_ms: float = 10.0):
        self.tok_s = tok_s
        self.step_ms = step_ms

    def prompt(self, n: int, seconds: float) -> None:
        if n >= 16 and seconds > 0:
            self.tok_s = 0.7 * self.tok_s + 0.3 * (n / seconds)

    def step(self, seconds: float) -> None:
        if seconds > 0:
            self.step_ms = 0.8 * self.step_ms + 0.2 * seconds * 1e3

    def prompt_ms(self, n: int) -> float:
        return n / max(self.tok_s, 1.0) * 1e3

    def fits(self, n_uncached: int, left_ms: float) -> bool:
        """Whether n_uncached prompt tokens and a few generation steps fit in left_ms, with a margin: the speed
        wobbles on a shared machine, and a prompt once started cannot stop at the deadline."""
        return 1.5 * self.prompt_ms(n_uncached) + 4 * self.step_ms <= left_ms

    def quick_tokens(self, latency_ms: float, limit: int) -> int:
        """Token budget of the reduced prompt: what the measured speed evaluates in its share of the cap (after
        room for a line of output), on a coarse ladder (powers of sqrt 2) so the budget — and with it the reduced
        prompt's window and its cached K/V — stays put while the measured speed wobbles."""
        ms = max(0.0, latency_ms - LINE_STEPS * self.step_ms) * QUICK_SHARE
        raw = self.tok_s * ms / 1e3
        k = math.floor(2 * math.log2(max(raw, 1.0)))
        n = int(2 ** (k / 2))
        return max(QUICK_MIN, min(QUICK_MAX, limit, n))


def chunk_tokens(tok_s: float, since_s: float, gap_s: float) -> int:
    """Tokens for the next background chunk, since_s after the latest request, requests coming every gap_s:
    what fits before the next one is due (with a margin), or the most when the user has paused."""
    if since_s > 2 * gap_s:
        return CHUNK_MAX
    n = int(tok_s * (gap_s - since_s) * 0.7)
    return max(CHUNK_MIN, min(CHUNK_MAX, n))


@dataclass
class Prefill:
    ctx: Context
    head_only: bool = False        # only the context from other files (the cursor is not known yet)
    suggest: bool = False          # then generate the full-context suggestion and hand it to on_done
    on_done: Callable | None = None  # (ctx, Result) from the model thread, when suggest
    tokens: list[int] | None = None  # the prompt, built in the model thread
    prompt: object = None
    cancel: CancelFlag = field(default_factory=CancelFlag)
    made: float = field(default_factory=time.monotonic)
    # where its time goes (Engine.last_prefill): building the prompt, evaluating chunks, chunks a request cut
    # short (their work is lost), generating; the rest of the time it waited (for requests, the settle pause)
    prof: dict = field(default_factory=lambda: {"build_ms": 0.0, "eval_ms": 0.0, "chunks": 0, "lost_ms": 0.0,
                                                "lost": 0, "gen_ms": 0.0})
