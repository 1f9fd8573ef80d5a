"""Does an adapter raise the likelihood of what the author wrote, where completions are scored? For the line
samples of `ckls eval completion` (same split, seeds and prompt: the server's, built by the engine's prompt
builder), the negative log-likelihood of each target — the healed prefix token, the rest of the line, its line
break — teacher-forced through the serving path, without and with the adapter; and the plain next-token loss of
the same files. Exact match can stay flat while these move: this tells "learnt nothing" from "learnt, but greedy
decoding does not show it".

    python bench/target_nll.py --repo DIR --adapter LORA.gguf [--model M] [--samples 200] [--files F ...]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ckls.config import Settings  # noqa: E402
from ckls.completion.engine import Engine  # noqa: E402
from ckls.eval.runner import Neighbours, sample_job  # noqa: E402
from ckls.eval.samples import make_samples  # noqa: E402
from ckls.fim.split import source_files, split_files  # noqa: E402
from ckls.runtime.lora import LoraAdapter  # noqa: E402


def nll(model, tokens: list[int], target: list[int]) -> float:
    """Summed -log p(target | tokens) (float64 over the runtime's logits)."""
    lg = model.eval(tokens + target[:-1], pos0=0, logits_all=True).astype(np.float64)[len(tokens) - 1:]
    m = lg.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
    return float((lse - lg[np.arange(len(target)), target]).sum())


def plain_loss(model, tok, paths: list[str], n: int = 256) -> float:
    total, count = 0.0, 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            ids = tok.encode(f.read())
        for i in range(0, len(ids) - 1, n):
            w = ids[i:i + n + 1]
            if len(w) > 1:
                total += nll(model, w[:1], w[1:])
                count += len(w) - 1
    return total / max(count, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--model", default=None)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--blocks", type=int, default=50, help="as the evaluation draws them (same cursor positions)")
    ap.add_argument("--held-out", type=float, default=0.2)
    ap.add_argument("--files", nargs="+", default=None, help="these files instead of the held-out split")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    given = {"latency_ms": 60000, "threads": a.threads} | ({"model_path": a.model} if a.model else {})
    settings = Settings().merged(given, strict=True)[0]
    every = source_files(a.repo)
    files = sorted(a.files) if a.files else split_files(a.repo, a.held_out, 0, every)[1]
    samples = [s for s in make_samples(a.repo, files, a.samples, a.blocks, 0, settings.max_lines) if s.kind == "line"]
    engine = Engine(settings)
    try:
        engine.load(settings).result()
        model, builder, tok = engine.model, engine.builder, engine.model.tokenizer
        neighbours = Neighbours(a.repo, every)
        jobs = []
        for s in samples:
            p = builder.build(sample_job(s, a.repo, settings, neighbours).ctx)
            jobs.append((engine._fit(p.tokens, model), tok.encode(p.heal.decode("utf-8", "replace") + s.target + "\n")))
        n_tok = sum(len(t) for _, t in jobs)
        paths = [os.path.join(a.repo, f) for f in files]
        rows = {}
        for name in ("base", "adapter"):
            if name == "adapter":
                model.set_adapter(LoraAdapter.from_gguf(model, a.adapter))
            per = np.array([nll(model, p, t) for p, t in jobs])
            rows[name] = per
            print(f"{name:8s} target NLL {per.sum() / n_tok:.3f} nats/token, {per.mean():.3f} per sample; "
                  f"plain loss of the files {plain_loss(model, tok, paths):.3f}")
        d = rows["base"] - rows["adapter"]
        print(f"{len(jobs)} line samples in {len(files)} files: adapter better on {(d > 0).mean():.0%}, "
              f"mean gain {d.mean():.3f} nats per sample (median {np.median(d):.3f})")
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
