"""An in-memory index of code windows with the SQLite index's ranking (rank.py): for the model factory, which
builds the server's retrieved context for the files of each training package, and for any caller holding texts
rather than a workspace folder.

    wi = WindowIndex()
    wi.add(path, text)                      # path: any name; text cut by text.windows like the index's files
    wi.search(query_text, k, exclude_path)  # the same windows Index.search returns for the same files
"""
from __future__ import annotations

import numpy as np

from . import rank, text as text_mod
from .index import Window


class WindowIndex:
    def __init__(self, split: bool = False):
        self.split = split
        self._rows: list[tuple[str, int, int, str]] = []   # (path, line, lines, terms)
        self._texts: dict[str, list[str]] = {}
        self._posting: dict[str, list[int]] = {}          # term -> window ids (each once)
        self._span: dict[str, tuple[int, int]] = {}       # path -> its window ids (added together: a range)
        self._total = 0

    def add(self, path: str, text: str) -> None:
        if path in self._texts:  # one text a path, as in the database (the first one stays)
            return
        lines = text.splitlines(keepends=True)
        self._texts[path] = lines
        first = len(self._rows)
        for line, wtext in text_mod.windows(lines):
            terms = text_mod.terms(wtext, self.split)
            wid = len(self._rows)
            self._rows.append((path, line, wtext.count("\n") + (not wtext.endswith("\n")), " ".join(terms)))
            for t in set(terms):
                self._posting.setdefault(t, []).append(wid)
            self._total += len(terms)
        self._span[path] = (first, len(self._rows))

    def __len__(self) -> int:
        return len(self._rows)

    def text_at(self, path: str, line: int, n: int) -> str:
        """n lines of path's text from `line` (fewer at its end; "" for a path it does not hold)."""
        return "".join(self._texts.get(path, [])[line:line + n])

    def search(self, query_text: str, k: int = 4, exclude_path: str | None = None) -> list[Window]:
        words = rank.query_words(query_text, self.split)
        if not words or k <= 0 or not self._rows:
            return []
        n_docs, avg_len = len(self._rows), self._total / len(self._rows)
        df = {w: len(self._posting.get(w, ())) for w in words}
        own: dict[str, int] = {}
        n_ex = 0
        if exclude_path in self._span:
            a, b = self._span[exclude_path]
            n_ex = b - a
            for _, _, _, t in self._rows[a:b]:
                for w in set(t.split()) & df.keys():
                    own[w] = own.get(w, 0) + 1
        elsewhere = {w: (df[w] or 1) - own.get(w, 0) for w in words}  # as the index counts a term it never saw
        rare = rank.rare_terms(words, elsewhere)
        ids = [np.asarray(self._posting[w], dtype=np.int64) for w in rare if w in self._posting]
        if not ids or not sum(map(len, ids)):
            return []
        weights = [np.full(len(a), rank.idf(df[w], n_docs)) for w, a in zip((w for w in rare if w in self._posting), ids)]
        u, inv = np.unique(np.concatenate(ids), return_inverse=True)
        first = np.bincount(inv, weights=np.concatenate(weights))
        cand = u[np.argsort(-first, kind="stable")[:rank.RERANK + n_ex]].tolist()
        scored = [(rank.bm25(self._rows[i][3], words, df, n_docs, avg_len),) + self._rows[i][:3] for i in cand]
        return [Window(p, line, "".join(self._texts[p][line:line + n]), float(s))
                for s, p, line, n in rank.pick(scored, k, exclude_path)]


def at_cursor(index, path: str, before: str, line: int, k: int,
              shift: int = text_mod.SHOW_SHIFT) -> list[tuple[str, str]]:
    """The (path, shown text) of the k windows `index` (Index or WindowIndex) retrieves for a cursor on document
    line `line` with `before` the text before it: the anchored query (text.cursor_query), never a window of
    `path`, each window clipped as a prompt shows it (text.shown). The server and the factory both ask this.
    Each hit is shown from `shift` lines further down (as many lines; 0: the hit itself): less of the code that
    matched the query, more of what follows it, which is what the cursor's next lines may repeat."""
    q = text_mod.cursor_query(before, line)
    if k <= 0 or not q.strip():
        return []
    hits = index.search(q, k, exclude_path=path)
    if shift > 0:
        return [(w.path, text_mod.shown(index.text_at(w.path, w.line + shift, text_mod.WINDOW_LINES) or w.text))
                for w in hits]
    return [(w.path, text_mod.shown(w.text)) for w in hits]


def package_retriever(docs: list[dict]):
    """The factory's retriever for one training package (fim.cursors.package_layouts): an index of the package's
    files, queried at a cursor as the server queries the workspace's index (at_cursor)."""
    wi = WindowIndex()
    for d in docs:
        wi.add(d["path"], d["text"])
    return lambda path, before, k: at_cursor(wi, path, before, before.count("\n"), k)
