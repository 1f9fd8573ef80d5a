"""Runs samples through the server's pipeline: Document window → build_context (scope, definitions from the
file and its neighbours) → the engine's prompt builder, generation and stop rules → post-processing. Nothing
here generates text by another path; only the latency cap is raised (by default) so that a busy machine does
not change what is measured."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from ckls.config import Settings
from ckls.completion.context import ExtraContext, build_context, extract_definitions
from ckls.completion.retrieval import Retrieval
from ckls.index import Index
from ckls.completion.documents import Document, index_to_utf16
from ckls.completion.engine import Engine, Job
from ckls.completion.memory import RepoMemory
from ckls.syntax import language_of
from ckls.eval.metrics import edit_similarity, exact_match
from ckls.eval.samples import Sample

NEIGHBOURS = 8        # files of the same directory whose definitions the editor has indexed (open tabs)


@dataclass
class Record:
    kind: str
    path: str
    language_id: str
    line: int
    col: int
    target: str
    pred: str           # the suggestion (its first line for line samples)
    raw: str            # the model's output before post-processing
    em: bool            # line: the whole line; block: its first line
    es: float           # line: the line; block: the whole block
    block_em: bool      # block samples: the whole block (False for line samples)
    latency_ms: float
    n_prompt: int
    n_generated: int
    timed_out: bool
    line_prefix: str = ""   # the cursor's line up to the cursor (to read misses by)


def score(sample: Sample, suggestion: str) -> tuple[str, bool, float, bool]:
    """(prediction, exact match, edit similarity, whole-block match) of a suggestion for a sample."""
    if sample.kind == "line":
        pred = suggestion.split("\n", 1)[0]
        return pred, exact_match(pred, sample.target), edit_similarity(pred.rstrip(), sample.target), False
    first_pred = suggestion.split("\n", 1)[0]
    first_target = sample.target.split("\n", 1)[0]
    return (suggestion, exact_match(first_pred, first_target),
            edit_similarity(suggestion.rstrip(), sample.target), exact_match(suggestion, sample.target))


class Neighbours:
    """Definitions of the files beside each sample's file, parsed once per file."""

    def __init__(self, repo: str, files: list[str]):
        self.repo = repo
        self.by_dir: dict[str, list[str]] = {}
        for f in sorted(files):
            self.by_dir.setdefault(os.path.dirname(f), []).append(f)
        self._defs: dict[str, dict[str, str]] = {}

    def defs(self, rel: str) -> dict[str, str]:
        d = self._defs.get(rel)
        if d is None:
            path = os.path.join(self.repo, rel)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                d = extract_definitions(language_of("", path), text)
            except (OSError, UnicodeDecodeError, ValueError):
                d = {}
            self._defs[rel] = d
        return d

    def of(self, rel: str) -> list[str]:
        return [f for f in self.by_dir.get(os.path.dirname(rel), []) if f != rel][:NEIGHBOURS]


def sample_job(sample: Sample, repo: str, settings: Settings, neighbours: Neighbours | None,
               retrieval: Retrieval | None = None, document: bool = False) -> Job:
    """The engine job the server would run at the sample's cursor (as `ckls complete` builds it), with the
    definitions of neighbouring files indexed as if they were open in the editor."""
    uri = "file://" + os.path.abspath(os.path.join(repo, sample.path))
    doc = Document(uri, sample.text, sample.language_id)
    extra = ExtraContext()
    if neighbours is not None:
        for rel in neighbours.of(sample.path):
            # the same index the server keeps for open files (ExtraContext.index), parsed once per file
            extra.defs["file://" + os.path.abspath(os.path.join(repo, rel))] = neighbours.defs(rel)
    extra.index(uri, sample.language_id, sample.text)
    character = index_to_utf16(doc.lines[sample.line], sample.col)
    before, after, first, ln, c = doc.window(sample.line, character, settings.prefix_tokens * 6,
                                             settings.suffix_tokens * 6)
    ctx = build_context(uri, sample.language_id, before, after, ln, c, first, extra, settings.extra_tokens * 3,
                        retrieval, (*doc.around_line(ln), None) if document else ())
    return Job(ctx, deadline=time.monotonic() + settings.latency_ms / 1e3, max_tokens=settings.max_tokens)


def build_memory(engine: Engine, repo: str, files: list[str], settings: Settings) -> RepoMemory:
    """The repository memory the server would hold for these files (relative paths under repo), with the loaded
    model's tokenizer, attached to the engine. The caller keeps the files it measures on out of `files`."""
    mem = RepoMemory(engine.model.tokenizer, capacity_tokens=settings.memory_tokens)
    for rel in files:
        try:
            with open(os.path.join(repo, rel), encoding="utf-8") as f:
                mem.add_file(rel, f.read())
        except (OSError, UnicodeDecodeError):
            continue
    engine.attach_memory(mem)
    return mem


def build_hidden_memory(engine: Engine, repo: str, files: list[str], spec: dict):
    """A hidden-state memory (ckls.runtime.knn_memory) of these files, attached to the engine in place of the
    n-gram memory; spec holds HiddenMemory's keyword arguments (k, temperature, lam, ...)."""
    from ckls.runtime.knn_memory import HiddenMemory

    spec = dict(spec)
    fim, plain, chars = int(spec.pop("fim", 0)), bool(spec.pop("plain", 1)), int(spec.pop("fim_chars", 600))
    mem = HiddenMemory(engine.model, **spec)
    texts = []
    for rel in files:
        try:
            with open(os.path.join(repo, rel), encoding="utf-8") as f:
                texts.append((rel, f.read()))
        except (OSError, UnicodeDecodeError):
            continue
    if plain:
        for rel, text in texts:
            mem.add_file(rel, text)
    if fim:  # the middles of cursor-shaped examples (the training layout, ckls.fim.cursors), up to `fim` a file
        for rel, text in texts:
            mem.add_windows(rel + "#fim", middle_windows(engine.model, rel, text, fim, chars))
    engine.attach_memory(mem)
    return mem


def middle_windows(model, path: str, text: str, most: int, example_chars: int, window: int = 1024) -> list:
    """(tokens, targets) of up to `most` cursor-shaped examples of one file as the server lays out a prompt
    (seeded), targets -1 but on the middle and its closing token; each at most `window` tokens of context, as the
    tuner sizes its examples (cursors.CONTEXT_CHARS_PER_TOKEN; longer ones are dropped)."""
    from ckls.fim import cursors, layout
    from ckls.fim.tokens import FimFormat

    fmt = FimFormat.from_tokenizer(model.tokenizer)
    if not fmt.has_fim:
        return []
    docs = [{"path": path, "text": text, "lang": "python" if path.endswith(".py") else "other"}]
    out = []
    context_chars = min(cursors.TOTAL_CHARS, int(window * cursors.CONTEXT_CHARS_PER_TOKEN))
    for _, lay in cursors.package_layouts(docs, np.random.default_rng(0), 1.0, 0.8, example_chars, most,
                                          context_chars):
        if not cursors.is_example(lay):
            continue
        r = layout.render(lay, model.tokenizer.encode, fmt.special_id, model.tokenizer.decode,
                          pretokenize=model.tokenizer.pretokenize)
        if not 2 <= len(r.ids) <= min(window + 1, model.n_ctx):
            continue
        ids = np.asarray(r.ids, dtype=np.int32)
        tgts = np.where(np.asarray(r.mask[1:], dtype=bool), ids[1:], -1).astype(np.int32)
        out.append((ids[:-1], tgts))
    return out


def run_samples(samples: list[Sample], repo: str, settings: Settings, files: list[str] | None = None,
                progress=None, engine: Engine | None = None, adapter: str | None = None,
                memory_files: list[str] | None = None, hidden_memory: dict | None = None,
                memory_document: bool = True,
                retrieval_shift: int | None = None) -> list[Record]:
    """One Record per sample, in order. `files` (the repo's source files) supplies the neighbours' definitions;
    `adapter` a LoRA GGUF served on top of the model, as the server serves a workspace adapter; `memory_files`
    (never the sampled files) the repository memory mixed into generation (ckls.completion.memory), with each
    sample's own document, its cursor's line left out, in the open-document slot as the server holds it
    (`memory_document`); progress(done, total, records) is called after each sample."""
    own = engine is None
    engine = engine or Engine(settings, model_setting="--model")
    neighbours = Neighbours(repo, files) if files else None
    out: list[Record] = []
    index = None
    try:
        retrieval = None
        if settings.retrieval:
            index, retrieval = repo_index(repo, retrieval_shift)
        engine.load(settings).result()
        if adapter:
            engine.serve_adapter(adapter).result()
        document = memory_files is not None and hidden_memory is None and memory_document
        if memory_files is not None:
            sampled = {s.path for s in samples}
            keep = [f for f in memory_files if f not in sampled]
            if hidden_memory is not None:
                build_hidden_memory(engine, repo, keep, hidden_memory)
            else:
                build_memory(engine, repo, keep, settings)
        for k, s in enumerate(samples):
            # each sample stands alone: no prefix-window start held over from the previous position
            engine.forget_windows()
            job = sample_job(s, repo, settings, neighbours, retrieval, document)
            res = engine.submit(job).result()
            pred, em, es, block_em = score(s, res.text)
            out.append(Record(s.kind, s.path, s.language_id, s.line, s.col, s.target, pred, res.raw, em, es,
                              block_em, res.total_ms, res.n_prompt, res.n_generated, res.timed_out,
                              job.ctx.line_prefix))
            if progress:
                progress(k + 1, len(samples), out)
    finally:
        if own:
            engine.close()
        if index is not None:
            index.close()
            shutil.rmtree(index.state_dir, ignore_errors=True)
    return out


def repo_index(repo: str, shift: int | None = None) -> tuple[Index, Retrieval]:
    """The whole tree indexed as the server indexes a workspace (a throw-away state folder). Held-out files are in
    it as a user's other files are; a sample's own file is never retrieved (Index.search's exclude_path)."""
    index = Index(repo, tempfile.mkdtemp(prefix="ckls-eval-index-"))
    index.build()
    return index, Retrieval(index) if shift is None else Retrieval(index, shift=shift)


def progress_line(stream=sys.stderr):
    t0 = time.monotonic()

    def show(done: int, total: int, recs: list[Record]) -> None:
        lines = [r for r in recs if r.kind == "line"]
        em = sum(r.em for r in lines) / len(lines) if lines else 0.0
        el = time.monotonic() - t0
        eta = el / done * (total - done)
        stream.write(f"\r[{done}/{total}] line EM {em:.3f}  {el / done:.2f} s/sample  eta {eta:.0f} s   ")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show
