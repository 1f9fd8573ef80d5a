"""One completion for a file position, outside any editor (`ckls complete`): the same context, prompt, engine and
post-processing the server uses, without debounce or cache."""
from __future__ import annotations

import time

from ckls.config import Settings
from ckls.completion.context import ExtraContext, build_context
from ckls.completion.documents import Document, index_to_utf16
from ckls.completion.engine import Engine, Job, Result
from ckls.syntax import EXTENSIONS


def complete_file(path: str, line: int, col: int, settings: Settings, language_id: str = "",
                  engine: Engine | None = None) -> Result:
    """Suggestion at 0-based line and 0-based column (in characters) of the file at path."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        text = f.read()
    import os

    uri = "file://" + os.path.abspath(path)
    language_id = language_id or EXTENSIONS.get(os.path.splitext(path)[1].lower(), "plaintext")
    doc = Document(uri, text, language_id)
    line = max(0, min(line, len(doc.lines) - 1))
    character = index_to_utf16(doc.lines[line], col)
    extra = ExtraContext()
    extra.index(uri, language_id, text)
    before, after, first, ln, c = doc.window(line, character, settings.prefix_tokens * 6, settings.suffix_tokens * 6)
    ctx = build_context(uri, language_id, before, after, ln, c, first, extra, settings.extra_tokens * 3,
                        document=(*doc.around_line(ln), None) if settings.memory_enabled else ())
    own = engine is None
    engine = engine or Engine(settings, model_setting="--model")
    try:
        engine.load(settings).result()
        job = Job(ctx, deadline=time.monotonic() + settings.latency_ms / 1e3, max_tokens=settings.max_tokens)
        return engine.submit(job).result()
    finally:
        if own:
            engine.close()
