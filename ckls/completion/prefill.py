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


ATTN_COST = 1.5  # a multiply-add of attention (f32 over the cache) takes this many of a weight product's (int8)


def attention_reach(hp: dict) -> float:
    """The position at which a token's attention over the cache costs as much as its weight products: each
    cached position adds 2 * n_embd multiply-adds a layer (scores and values), the weights n_embd * (q + o) +
    2 * kv + 3 * ffn. The logits' product is left out: a prompt computes it for its last token only."""
    d, L = hp["n_embd"], hp["n_layer"]
    kv = hp["n_head_kv"] * (d // hp["n_head"])
    weights = L * (2 * d * d + 2 * d * kv + 3 * d * hp["n_ff"])
    return weights / (2 * d * L) / ATTN_COST


class Meter:
    """This machine's prompt speed and generation step, measured. tok_s is the speed at the start of the context:
    a token at position p costs (1 + p / reach) times as much (its attention reads p cached positions; reach from
    the model's shape, attention_reach), so a long prompt's evaluation is estimated right, not from its start."""

    def __init__(self, tok_s: float = 500.0, step_ms: float = 10.0, reach: float = float("inf")):
        self.tok_s = tok_s
        self.step_ms = step_ms
        self.reach = reach

    def work(self, n: int, pos0: int) -> float:
        """n tokens from position pos0, as tokens at position 0"""
        return n * (1.0 + (pos0 + n / 2) / self.reach)

    def prompt(self, n: int, seconds: float, pos0: int = 0) -> None:
        if n >= 16 and seconds > 0:
            self.tok_s = 0.7 * self.tok_s + 0.3 * (self.work(n, pos0) / seconds)

    def step(self, seconds: float) -> None:
        if seconds > 0:
            self.step_ms = 0.8 * self.step_ms + 0.2 * seconds * 1e3

    def tok_s_at(self, pos: int) -> float:
        return self.tok_s / (1.0 + pos / self.reach)

    def prompt_ms(self, n: int, pos0: int = 0) -> float:
        return self.work(n, pos0) / max(self.tok_s, 1.0) * 1e3

    def fits(self, n_uncached: int, left_ms: float, pos0: int = 0) -> bool:
        """Whether n_uncached prompt tokens from position pos0 and a few generation steps fit in left_ms, with a
        margin: the speed wobbles on a shared machine, and a prompt once started cannot stop at the deadline."""
        return 1.5 * self.prompt_ms(n_uncached, pos0) + 4 * self.step_ms <= left_ms

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
