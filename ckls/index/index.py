"""The workspace's index: code windows, definitions and per-file hashes in the state folder's SQLite database.

    ix = Index(root, state_dir)              # opens (or creates, or sets aside a corrupt one and recreates)
    ix.build(pace=..., progress=...)         # full or resumed build, in the caller's thread; start_build() = thread
    ix.update(path[, text]) / ix.remove(path)
    ix.search(query_text, k, exclude_path)   # BM25 over identifier terms; never a window of exclude_path
    ix.definitions(names)

Paths in and out are relative to root, '/'-separated (absolute paths and file:// URIs under root are accepted as
input); lines are 0-based. Nothing is written under root.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

import numpy as np

from ckls.fim import corpus, dedup

from . import definitions as defs_mod
from . import rank, store, text as text_mod
from .rank import MAX_QUERY_TERMS, RERANK

log = logging.getLogger("ckls.index")
BATCH_FILES, BATCH_SECONDS = 64, 0.5  # a build commits after this many files or seconds, whichever comes first
BODY_LINES = 4  # a definition's text: its signature and this many lines of its body


@dataclass(frozen=True)
class Window:
    path: str
    line: int     # first line of the window
    text: str
    score: float  # BM25, higher is better


@dataclass(frozen=True)
class Definition:
    name: str
    path: str
    line: int
    text: str     # signature and the first lines of the body
    score: float  # 1 / how many definitions the name has in the index


@dataclass
class BuildReport:
    total: int = 0       # candidate files
    indexed: int = 0     # files (re)read and written this build
    unchanged: int = 0   # files skipped because size/mtime or content hash matched
    removed: int = 0     # rows of files that are gone
    dropped: dict[str, int] = field(default_factory=dict)
    cancelled: bool = False
    seconds: float = 0.0


class FileHook:
    """Something more to keep per file in the same database and transactions (the repository's token stream for a
    token-level memory will be one). `schema` runs at open; `add`/`remove` inside the index's transaction of that
    file; `clear` when the index forgets everything."""

    def schema(self, conn) -> None: ...
    def add(self, conn, path: str, text: str) -> None: ...
    def remove(self, conn, path: str) -> None: ...
    def clear(self, conn) -> None: ...


@dataclass
class _Record:
    path: str
    sha1: str | None
    size: int
    mtime_ns: int
    lang: str | None = None
    text: str | None = None
    sig: np.ndarray | None = None
    exact: str | None = None
    dropped: str | None = None
    gen: int = 0


def _recovers(default):
    """An Index method that reads or writes the database: when the database turns out corrupt, it is set aside
    and a fresh one started (Index._recover), and the method returns default() instead of raising."""
    def wrap(fn):
        @functools.wraps(fn)
        def method(self, *args, **kwargs):
            try:
                return fn(self, *args, **kwargs)
            except Exception as e:
                if store.is_corrupt(e):
                    self._recover(e)
                    return default()
                raise
        return method
    return wrap


class Index:
    def __init__(self, root: str | os.PathLike, state_dir: str | os.PathLike, split: bool = False,
                 hooks: tuple[FileHook, ...] = (), warn=None):
        self.root = os.path.realpath(os.fspath(root))
        self.state_dir = os.path.realpath(os.fspath(state_dir))
        if os.path.commonpath([self.root, self.state_dir]) == self.root:
            raise ValueError(f"the index's state folder {self.state_dir} is inside the workspace {self.root}: "
                             "ckls writes nothing into the user's repository")
        self.split = split
        self.hooks = tuple(hooks)
        self.messages: list[str] = []
        self._warn_cb = warn
        self._lock = threading.RLock()         # the query/update connection
        self._write = threading.Lock()         # one writer at a time (updates and a build's batches)
        self._gen: dict[str, int] = {}         # path -> bumped by update/remove: a build never writes over newer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._df = None  # (term -> windows holding it, windows, mean length): read at the first query after a build
        self.max_terms = MAX_QUERY_TERMS
        self._open()

    # ---- opening and health -----------------------------------------------------------------------------------
    def _warn(self, msg: str) -> None:
        self.messages.append(msg)
        log.warning(msg)
        if self._warn_cb is not None:
            self._warn_cb(msg)

    def _open(self) -> None:
        self.conn, fresh = store.open_db(self.state_dir, self._warn)
        for h in self.hooks:
            h.schema(self.conn)
        mode = self._meta("split")
        if not fresh and mode is not None and mode != str(int(self.split)):
            self._warn("index: term splitting changed; rebuilding the index")
            self._clear(self.conn)
        self._set_meta(self.conn, "split", str(int(self.split)))

    @property
    def path(self) -> str:
        return os.path.join(self.state_dir, store.DB_NAME)

    @property
    def complete(self) -> bool:
        """True when the last full build ran to its end (updates since then keep it so)."""
        return self._meta("state") == "complete"

    def _meta(self, key: str):
        with self._lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def _set_meta(conn, key: str, value: str) -> None:
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _clear(self, conn) -> None:
        conn.execute("BEGIN IMMEDIATE")
        for t in ("files", "bands", "texts", "windows", "windows_fts", "defs"):
            conn.execute(f"DELETE FROM {t}")
        for h in self.hooks:
            h.clear(conn)
        self._set_meta(conn, "state", "empty")
        conn.execute("COMMIT")

    def _recover(self, e: Exception) -> None:
        """A query or write found the database corrupt: set it aside, start an empty one (a build refills it)."""
        self._stop.set()  # a running build's connection still points at the moved file: it stops
        with self._lock:
            try:
                self.conn.close()
            except Exception:
                pass
            dest = store.set_aside(self.path)
            self._warn(f"index: {self.path} is damaged ({e}); moved it to {dest}, the index is rebuilt")
            self._open()

    def close(self) -> None:
        self.cancel()
        with self._lock:
            self.conn.close()

    # ---- paths --------------------------------------------------------------------------------------------------
    def rel(self, path: str | os.PathLike) -> str | None:
        """A workspace-relative '/'-separated path, or None for a path outside the workspace."""
        p = os.fspath(path)
        if p.startswith("file://"):
            p = unquote(urlparse(p).path)
        if not os.path.isabs(p):
            p = os.path.join(self.root, p)
        p = os.path.realpath(p)
        if os.path.commonpath([self.root, p]) != self.root or p == self.root:
            return None
        return os.path.relpath(p, self.root).replace(os.sep, "/")

    # ---- reading one file -------------------------------------------------------------------------------------
    def _record(self, rel: str, text: str | None = None) -> _Record:
        full = os.path.join(self.root, rel)
        gen = self._gen.get(rel, 0)
        if text is None:
            try:
                st = os.stat(full)
                size, mtime = st.st_size, st.st_mtime_ns
            except OSError:
                return _Record(rel, None, -1, -1, dropped="unreadable", gen=gen)
            text, sig, why = corpus.read_source(full)
        else:
            size, mtime = len(text.encode("utf-8", "surrogatepass")), -1  # an unsaved buffer: the next build rereads
            why = corpus.check_text(text) or ("binary" if "\0" in text else None)
            sig = dedup.signature(text) if why is None else None
        if why is not None:
            return _Record(rel, None, size, mtime, dropped=why, gen=gen)
        sha1 = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
        return _Record(rel, sha1, size, mtime, defs_mod.language_of(rel), text, sig, dedup.exact_key(text), gen=gen)

    # ---- writing ----------------------------------------------------------------------------------------------
    def _delete_rows(self, conn, rel: str) -> None:
        conn.execute("DELETE FROM windows_fts WHERE rowid IN (SELECT id FROM windows WHERE path = ?)", (rel,))
        conn.execute("DELETE FROM windows WHERE path = ?", (rel,))
        conn.execute("DELETE FROM defs WHERE path = ?", (rel,))
        conn.execute("DELETE FROM texts WHERE path = ?", (rel,))
        conn.execute("DELETE FROM bands WHERE path = ?", (rel,))
        for h in self.hooks:
            h.remove(conn, rel)

    def _duplicate_of(self, conn, r: _Record) -> str | None:
        row = conn.execute("SELECT path FROM files WHERE exact = ? AND dropped IS NULL AND path != ? LIMIT 1",
                           (r.exact, r.path)).fetchone()
        if row:
            return f"exact duplicate of {row[0]}"
        cands: set[str] = set()
        for b, key in enumerate(_band_keys(r.sig)):
            cands.update(p for (p,) in conn.execute("SELECT path FROM bands WHERE band = ? AND key = ? AND path != ?",
                                                    (b, key, r.path)))
        for p in sorted(cands):
            row = conn.execute("SELECT sig FROM files WHERE path = ? AND dropped IS NULL", (p,)).fetchone()
            if row and (np.frombuffer(row[0], dtype=np.uint32) == r.sig).mean() >= dedup.NEAR:
                return f"near duplicate of {p}"
        return None

    def _write_record(self, conn, r: _Record) -> None:
        """Replaces a file's rows (inside the caller's transaction)."""
        self._delete_rows(conn, r.path)
        if r.dropped is None:
            r.dropped = self._duplicate_of(conn, r)
        conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (r.path, r.sha1, r.size, r.mtime_ns, r.lang, r.text.count("\n") + 1 if r.text else 0, r.exact,
                      r.sig.tobytes() if r.sig is not None else None, r.dropped))
        if r.dropped is not None:
            return
        conn.executemany("INSERT INTO bands VALUES (?, ?, ?)", [(b, k, r.path) for b, k in enumerate(_band_keys(r.sig))])
        conn.execute("INSERT INTO texts VALUES (?, ?)", (r.path, r.text))
        for line, wtext in text_mod.windows(r.text.splitlines(keepends=True)):
            cur = conn.execute("INSERT INTO windows (path, line, lines) VALUES (?, ?, ?)",
                               (r.path, line, wtext.count("\n") + (not wtext.endswith("\n"))))
            conn.execute("INSERT INTO windows_fts (rowid, terms) VALUES (?, ?)",
                         (cur.lastrowid, " ".join(text_mod.terms(wtext, self.split))))
        conn.executemany("INSERT INTO defs VALUES (?, ?, ?, ?, ?)",
                         [(r.path, d.name, d.kind, d.line, d.text)
                          for d in defs_mod.extract(r.lang, r.text, body_lines=BODY_LINES)])
        for h in self.hooks:
            h.add(conn, r.path, r.text)

    def _transaction(self, conn, fn) -> None:
        with self._write:
            conn.execute("BEGIN IMMEDIATE")
            try:
                fn()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ---- incremental ------------------------------------------------------------------------------------------
    @_recovers(lambda: False)
    def update(self, path: str | os.PathLike, text: str | None = None) -> bool:
        """Re-indexes one file (on save, or with `text` an editor's buffer on change). False when the file is not
        indexed (outside the workspace, excluded, ignored by git, dropped by the load rules or a duplicate)."""
        rel = self.rel(path)
        if rel is None:
            return False
        if corpus.excluded(rel) is not None:
            self.remove(rel)
            return False
        with self._lock:
            known = self.conn.execute("SELECT 1 FROM files WHERE path = ?", (rel,)).fetchone() is not None
        if not known and corpus.git_ignored(self.root, rel):
            return False
        self._gen[rel] = self._gen.get(rel, 0) + 1
        r = self._record(rel, text)
        with self._lock:
            self._transaction(self.conn, lambda: self._write_record(self.conn, r))
        return r.dropped is None

    @_recovers(lambda: None)
    def remove(self, path: str | os.PathLike) -> None:
        """Forgets a file (deleted, or now excluded)."""
        rel = self.rel(path)
        if rel is None:
            return
        self._gen[rel] = self._gen.get(rel, 0) + 1

        def go():
            self._delete_rows(self.conn, rel)
            self.conn.execute("DELETE FROM files WHERE path = ?", (rel,))
        with self._lock:
            self._transaction(self.conn, go)

    # ---- full build ---------------------------------------------------------------------------------------------
    def build(self, pace=None, progress=None, fresh: bool = False, max_files: int = 20000) -> BuildReport:
        """Brings the index up to the workspace: every candidate file (the tuner's rules) whose size/mtime or hash
        changed is re-read, files that are gone are removed. pace() is called before each file (a caller gives
        way to typing there), progress(done, total) after each. Commits every BATCH_FILES files or BATCH_SECONDS,
        so a killed build keeps what it committed and the next build resumes; cancel() stops it between files.
        fresh: forget everything first (re-decides duplicates). In the caller's thread; see start_build."""
        t0 = time.monotonic()
        self._stop.clear()
        rep = BuildReport()
        gen0 = dict(self._gen)
        conn = store.connect(self.path)
        try:
            if fresh:
                with self._write:
                    self._clear(conn)
            with self._write:
                self._set_meta(conn, "state", "building")
            known = {p: (size, mtime, sha1) for p, size, mtime, sha1 in
                     conn.execute("SELECT path, size, mtime_ns, sha1 FROM files")}
            paths = [p for p in corpus.candidate_paths(self.root) if self._count_excluded(p, rep)][:max_files]
            rep.total = len(paths)
            batch: list[_Record] = []
            last = time.monotonic()
            for i, rel in enumerate(paths):
                if pace is not None:
                    pace()
                if self._stop.is_set():
                    rep.cancelled = True
                    break
                r = self._changed(rel, known.get(rel))
                if r is None:
                    rep.unchanged += 1
                else:
                    batch.append(r)
                if batch and (len(batch) >= BATCH_FILES or time.monotonic() - last > BATCH_SECONDS):
                    self._flush(conn, batch, rep)
                    batch, last = [], time.monotonic()
                if progress is not None:
                    progress(i + 1, rep.total)
            if batch:
                self._flush(conn, batch, rep)
            if not rep.cancelled:
                gone = set(known) - set(paths)

                def drop_gone():
                    for p in sorted(gone):
                        if self._gen.get(p, 0) == gen0.get(p, 0):  # not updated while this build ran
                            self._delete_rows(conn, p)
                            conn.execute("DELETE FROM files WHERE path = ?", (p,))
                            rep.removed += 1
                    self._set_meta(conn, "state", "complete")
                self._transaction(conn, drop_gone)
                self._df = None
        except Exception as e:
            if store.is_corrupt(e):
                conn.close()
                self._recover(e)
                rep.cancelled = True
                return rep
            raise
        finally:
            try:
                conn.close()
            except Exception:
                pass
        rep.seconds = time.monotonic() - t0
        return rep

    @staticmethod
    def _count_excluded(rel: str, rep: BuildReport) -> bool:
        why = corpus.excluded(rel)
        if why is not None:
            rep.dropped[why] = rep.dropped.get(why, 0) + 1
        return why is None

    def _changed(self, rel: str, old) -> _Record | None:
        """The file's record when it needs writing, None when the index already has this content."""
        if old is not None:
            try:
                st = os.stat(os.path.join(self.root, rel))
                if (st.st_size, st.st_mtime_ns) == (old[0], old[1]):
                    return None
            except OSError:
                pass
        r = self._record(rel)
        if old is not None and r.sha1 is not None and r.sha1 == old[2]:
            r.text = None  # same content, new mtime: only the stat columns change
        return r

    def _flush(self, conn, batch: list[_Record], rep: BuildReport) -> None:
        def go():
            for r in batch:
                if self._gen.get(r.path, 0) != r.gen:
                    continue  # updated or removed while this build read it: the newer rows stay
                if r.text is None and r.sha1 is not None:
                    conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (r.size, r.mtime_ns, r.path))
                    rep.unchanged += 1
                    continue
                self._write_record(conn, r)
                rep.indexed += 1
                if r.dropped is not None:
                    key = r.dropped.split(" of ")[0]
                    rep.dropped[key] = rep.dropped.get(key, 0) + 1
        self._transaction(conn, go)

    def start_build(self, pace=None, progress=None, done=None, fresh: bool = False) -> threading.Thread:
        """build() in a daemon thread; done(report or exception) at its end."""
        def run():
            try:
                rep = self.build(pace, progress, fresh)
            except Exception as e:  # reported, not raised into a dead thread
                log.exception("index build failed")
                rep = e
            if done is not None:
                done(rep)
        self._thread = threading.Thread(target=run, name="ckls-index-build", daemon=True)
        self._thread.start()
        return self._thread

    def cancel(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    # ---- queries ------------------------------------------------------------------------------------------------
    @_recovers(list)
    def search(self, query_text: str, k: int = 4, exclude_path: str | None = None) -> list[Window]:
        """The k windows most similar to query_text (BM25 over identifier terms), at most one of overlapping
        windows of a file, never a window of exclude_path (the file being completed).

        FTS5 serves as the inverted index; its own ranking scores every window any term matches (~2.4 us a window,
        tens of thousands for a 15-line query), so: the query's max_terms rarest terms (counted outside
        exclude_path) pick RERANK candidates by the sum of their IDFs, and those are scored by BM25 over all the
        query's terms, as FTS5's bm25() would (bench/index.py, docs/index.md)."""
        words = rank.query_words(query_text, self.split)
        if not words or k <= 0:
            return []
        ex = self.rel(exclude_path) if exclude_path is not None else None
        df, n_docs, avg_len = self._doc_freq()
        with self._lock:
            own: dict[str, int] = {}  # a name found only in the excluded file matches nothing it may return
            n_ex = 0
            if ex is not None:
                for (t,) in self.conn.execute("SELECT f.terms FROM windows AS w JOIN windows_fts AS f "
                                              "ON f.rowid = w.id WHERE w.path = ?", (ex,)):
                    n_ex += 1
                    for w in set(t.split()):
                        own[w] = own.get(w, 0) + 1
            elsewhere = {w: df.get(w, 1) - own.get(w, 0) for w in words}  # a term newer than df: 1
            rare = rank.rare_terms(words, elsewhere, self.max_terms)
            ids, weights = [], []
            for w in rare:
                a = np.fromiter((r for (r,) in self.conn.execute(
                    "SELECT rowid FROM windows_fts WHERE windows_fts MATCH ?", (f'"{w}"',))), dtype=np.int64)
                ids.append(a)
                weights.append(np.full(len(a), rank.idf(df.get(w, 1), n_docs)))
            if not ids or not sum(map(len, ids)):
                return []
            u, inv = np.unique(np.concatenate(ids), return_inverse=True)
            first = np.bincount(inv, weights=np.concatenate(weights))
            cand = u[np.argsort(-first, kind="stable")[:RERANK + n_ex]].tolist()
            rows = self.conn.execute(
                f"SELECT w.path, w.line, w.lines, f.terms FROM windows AS w JOIN windows_fts AS f "
                f"ON f.rowid = w.id WHERE w.id IN ({','.join(map(str, cand))})").fetchall()
            scored = [(rank.bm25(t, words, df, n_docs, avg_len), p, l, n) for p, l, n, t in rows]
            return [Window(path, line, self._lines(path, line, n), float(score))
                    for score, path, line, n in rank.pick(scored, k, ex)]

    def _doc_freq(self) -> tuple[dict[str, int], int, float]:
        """(term -> windows holding it, windows, mean terms per window) from FTS5's vocabulary (~0.3 s for 50k
        terms), kept until the next build ends: updates in between leave it slightly stale, which only shifts
        which terms a query matches on and the re-scoring's weights a little."""
        cached = self._df
        if cached is None:
            with self._lock:
                self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.windows_vocab "
                                  "USING fts5vocab(main, 'windows_fts', 'row')")
                df, total = {}, 0
                for term, doc, cnt in self.conn.execute("SELECT term, doc, cnt FROM temp.windows_vocab"):
                    df[term] = doc
                    total += cnt
                n = self.conn.execute("SELECT count(*) FROM windows").fetchone()[0]
            cached = self._df = (df, n, total / max(n, 1))
        return cached

    @_recovers(str)
    def text_at(self, path: str, line: int, n: int) -> str:
        """n lines of an indexed file's text from `line` (fewer at its end; "" for a file it does not hold)."""
        with self._lock:
            return self._lines(path, line, n)

    def _lines(self, path: str, line: int, n: int) -> str:
        row = self.conn.execute("SELECT text FROM texts WHERE path = ?", (path,)).fetchone()
        return "".join(row[0].splitlines(keepends=True)[line:line + n]) if row else ""

    @_recovers(list)
    def definitions(self, names, exclude_path: str | None = None, per_name: int = 3) -> list[Definition]:
        """Definitions of the names (in the names' order; at most per_name each, from other files than
        exclude_path)."""
        ex = self.rel(exclude_path) if exclude_path is not None else None
        out: list[Definition] = []
        with self._lock:
            for name in dict.fromkeys(names):
                rows = self.conn.execute("SELECT path, line, text FROM defs WHERE name = ? ORDER BY path, line",
                                         (name,)).fetchall()
                rows = [r for r in rows if r[0] != ex]
                for path, line, dtext in rows[:per_name]:
                    out.append(Definition(name, path, line, dtext, 1.0 / len(rows)))
        return out

    @_recovers(list)
    def texts(self) -> list[tuple[str, str]]:
        """(path, text) of every indexed file, in path order (what a token memory of the repository is built from)."""
        with self._lock:
            return self.conn.execute("SELECT path, text FROM texts ORDER BY path").fetchall()

    def stats(self) -> dict:
        with self._lock:
            c = self.conn
            return {"files": c.execute("SELECT count(*) FROM files WHERE dropped IS NULL").fetchone()[0],
                    "dropped": c.execute("SELECT count(*) FROM files WHERE dropped IS NOT NULL").fetchone()[0],
                    "windows": c.execute("SELECT count(*) FROM windows").fetchone()[0],
                    "definitions": c.execute("SELECT count(*) FROM defs").fetchone()[0],
                    "state": self._meta("state"),
                    "bytes": os.path.getsize(self.path)}


def _band_keys(sig: np.ndarray) -> list[int]:
    return [int.from_bytes(sig[b * dedup.ROWS:(b + 1) * dedup.ROWS].tobytes()[:8], "little", signed=True)
            for b in range(dedup.BANDS)]
