"""Does repository retrieval in the prompt pay with the shipped model, before any training for it?

    python bench/retrieval_probe.py [--projects sqlparse==0.6.1,...] [--samples 200] [--k 2] [--place last]
                                    [--model M.gguf] [--oracle]

For each project, the same line samples (held-out files, `ckls eval completion`'s sampler and runner: the
server's context, prompt, engine and post-processing) are completed twice: as the server does today, and with the
k code windows (20 lines, step 10) of *other* files most similar to the cursor's last 15 lines (Jaccard on
identifiers) added to the prompt's head — a file never retrieves its own text. Prints exact match both ways, the
paired difference with a bootstrap 95% interval, and wins/losses. A probe for the repository-index work: the
retriever here is a plain scan, not the index.

--oracle asks what the model does with a perfect retriever: only the samples whose whole target line (the text
before the cursor on its line and the target) occurs in another file are completed, and the head gets that
file's 20 lines around the occurrence (a file never retrieves itself). Exact match there is the ceiling of what
retrieval can buy through this model and prompt layout; the share of such samples is the ceiling of its reach.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import ckls.eval.runner as runner  # noqa: E402
from ckls.config import Settings  # noqa: E402
from ckls.completion.context import ExtraContext  # noqa: E402
from ckls.eval.samples import make_samples  # noqa: E402
from ckls.fim.split import source_files, split_files  # noqa: E402
from eval_projects import fetch  # noqa: E402
from ckls.stats import bootstrap  # noqa: E402

IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
WINDOW, STEP, QUERY_LINES = 20, 10, 15


def windows(repo: str, files: list[str]) -> list[tuple[str, str, frozenset]]:
    out = []
    for rel in files:
        try:
            with open(os.path.join(repo, rel), encoding="utf-8") as f:
                lines = f.read().splitlines(keepends=True)
        except (OSError, UnicodeDecodeError):
            continue
        for s in range(0, max(1, len(lines) - WINDOW + STEP), STEP):
            text = "".join(lines[s:s + WINDOW])
            ids = frozenset(IDENT.findall(text))
            if len(ids) >= 3:
                out.append((rel, text, ids))
    return out


class Retriever:
    def __init__(self, repo: str, files: list[str], k: int):
        self.wins, self.k = windows(repo, files), k

    def __call__(self, path: str, before: str) -> list[tuple[str, str]]:
        q = frozenset(IDENT.findall("".join(before.splitlines(keepends=True)[-QUERY_LINES:])))
        if not q:
            return []
        scored = sorted(((len(q & ids) / len(q | ids), rel, text) for rel, text, ids in self.wins
                         if not path.endswith(rel)), reverse=True)
        return [(rel.rsplit("/", 1)[-1], text) for _, rel, text in scored[:self.k]]


class Oracle:
    """The 20 lines of another file around an occurrence of the sample's whole target line."""

    def __init__(self, repo: str, files: list[str]):
        self.texts = {}
        for rel in files:
            try:
                with open(os.path.join(repo, rel), encoding="utf-8") as f:
                    self.texts[rel] = f.read().splitlines(keepends=True)
            except (OSError, UnicodeDecodeError):
                continue
        self.want: dict[tuple[str, str], tuple[str, str]] = {}  # (path, text before the cursor) -> its window

    def find(self, path: str, full_line: str) -> tuple[str, str] | None:
        for rel, lines in self.texts.items():
            if path.endswith(rel) or rel.endswith(path):
                continue
            for i, ln in enumerate(lines):
                if ln.strip() == full_line:
                    s = max(0, i - WINDOW // 2)
                    return rel.rsplit("/", 1)[-1], "".join(lines[s:s + WINDOW])
        return None

    def __call__(self, path: str, before: str) -> list[tuple[str, str]]:
        for (p, b), window in self.want.items():
            if path.endswith(p) and before.endswith(b):
                return [window]
        return []


def run(repo: str, samples, settings, files, retriever, place: str):
    class WithRetrieval(ExtraContext):
        def render(self, ctx, budget_chars):
            own = super().render(ctx, budget_chars)
            if retriever is None:
                return own
            got = retriever(ctx.uri, ctx.before)
            return got + own if place == "first" else own + got

    runner.ExtraContext = WithRetrieval
    try:
        return runner.run_samples(samples, repo, settings, files)
    finally:
        runner.ExtraContext = ExtraContext


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projects", default="sqlparse==0.6.1,tomlkit==0.15.2,marshmallow==4.4.0")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--place", choices=["first", "last"], default="last")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(ROOT, ".work", "eval"))
    ap.add_argument("--model", default="", help="GGUF model (default: the shipped one)")
    ap.add_argument("--oracle", action="store_true", help="a perfect retriever, on the samples it can serve")
    a = ap.parse_args()
    settings = Settings().merged({"latency_ms": 60000, "threads": a.threads, "model_path": a.model},
                                 strict=True)[0]
    for spec in a.projects.split(","):
        name, version = spec.split("==")
        repo = fetch(name, version, a.cache)
        all_files = source_files(repo)
        held = split_files(repo, 0.2, 0, all_files)[1]
        samples = [s for s in make_samples(repo, held, a.samples, 0, 0, settings.max_lines) if s.kind == "line"]
        retriever = Retriever(repo, all_files, a.k)
        if a.oracle:
            retriever, kept = Oracle(repo, all_files), []
            for s in samples:
                lines = s.text.splitlines(keepends=True)
                before = "".join(lines[:s.line]) + lines[s.line][:s.col]
                full = (lines[s.line][:s.col] + s.target).strip()
                window = retriever.find(s.path, full)
                if window is not None:
                    retriever.want[(s.path, before[-400:])] = window
                    kept.append(s)
            print(f"{name}=={version}: {len(kept)} of {len(samples)} line samples have their whole line in another "
                  f"file", flush=True)
            samples = kept
        t0 = time.monotonic()
        base = run(repo, samples, settings, all_files, None, a.place)
        ret = run(repo, samples, settings, all_files, retriever, a.place)
        diffs = [int(r.em) - int(b.em) for b, r in zip(base, ret)]
        lo, hi = bootstrap(diffs)
        em_b = sum(r.em for r in base) / len(base)
        em_r = sum(r.em for r in ret) / len(ret)
        print(f"{name}=={version}: {len(samples)} line samples, line EM {em_b:.3f} -> {em_r:.3f} "
              f"({em_r - em_b:+.3f}, 95% CI {lo:+.3f}..{hi:+.3f}; wins {diffs.count(1)}, losses {diffs.count(-1)}); "
              f"prompt tokens {sum(r.n_prompt for r in base) / len(base):.0f} -> "
              f"{sum(r.n_prompt for r in ret) / len(ret):.0f}; {time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
