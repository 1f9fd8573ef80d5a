"""The index's database: one SQLite file (WAL journal, FTS5 for the windows' terms) in the caller's state folder.

Opening checks it (quick_check and the schema version); a file SQLite cannot read is moved aside as
`index.db.corrupt-<time>` (with its -wal/-shm) and a fresh one is created, with a message. Every change happens in
a transaction, so a process killed at any point leaves the last committed state."""
from __future__ import annotations

import os
import sqlite3
import time

SCHEMA = 1
DB_NAME = "index.db"
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
-- every workspace file the index has read: dropped is NULL when its windows and definitions are in,
-- else why not (a load rule, or a duplicate of another file)
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, sha1 TEXT, size INTEGER, mtime_ns INTEGER, lang TEXT,
    lines INTEGER, exact TEXT, sig BLOB, dropped TEXT);
CREATE INDEX IF NOT EXISTS files_exact ON files (exact);
-- MinHash LSH bands of the indexed files (near-duplicate candidates)
CREATE TABLE IF NOT EXISTS bands (band INTEGER, key INTEGER, path TEXT);
CREATE INDEX IF NOT EXISTS bands_key ON bands (band, key);
CREATE INDEX IF NOT EXISTS bands_path ON bands (path);
-- an indexed file's text, once (windows overlap: they are cut from it when a query returns them)
CREATE TABLE IF NOT EXISTS texts (path TEXT PRIMARY KEY, text TEXT);
CREATE TABLE IF NOT EXISTS windows (id INTEGER PRIMARY KEY, path TEXT, line INTEGER, lines INTEGER);
CREATE INDEX IF NOT EXISTS windows_path ON windows (path);
-- rowid = windows.id, terms = the window's identifier terms, space-separated (ckls.index.text.terms)
CREATE VIRTUAL TABLE IF NOT EXISTS windows_fts USING fts5 (terms, tokenize = "unicode61 tokenchars '_'");
CREATE TABLE IF NOT EXISTS defs (path TEXT, name TEXT, kind TEXT, line INTEGER, text TEXT);
CREATE INDEX IF NOT EXISTS defs_name ON defs (name);
CREATE INDEX IF NOT EXISTS defs_path ON defs (path);
"""


def is_corrupt(e: BaseException) -> bool:
    if not isinstance(e, sqlite3.DatabaseError):
        return False
    code = getattr(e, "sqlite_errorcode", None)
    msg = str(e).lower()
    return code in _CORRUPT_CODES or "malformed" in msg or "not a database" in msg or "corrupt" in msg


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a crash keeps every committed transaction but
    return conn                                   # perhaps the last (a power loss); never a torn one


def set_aside(path: str) -> str:
    """Moves a database (and its -wal/-shm) to <path>.corrupt-<time>; returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = f"{path}.corrupt-{stamp}"
    n = 1
    while os.path.exists(dest):
        n += 1
        dest = f"{path}.corrupt-{stamp}-{n}"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.replace(path + suffix, dest + suffix)
    return dest


def open_db(state_dir: str, warn) -> tuple[sqlite3.Connection, bool]:
    """(connection, fresh): the state folder's index database, checked; fresh when it was (re)created empty."""
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, DB_NAME)
    existed = os.path.exists(path)
    conn = None
    try:
        conn = connect(path)
        ok = conn.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed: {ok}")
        version = _schema_of(conn)
        if existed and version not in (None, SCHEMA):
            conn.close()
            conn = None
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
            warn(f"index: {path} has schema {version}, this ckls writes {SCHEMA}: rebuilding it")
            return _create(path), True
        fresh = version is None
        if fresh:
            conn.close()
            return _create(path), True
        return conn, False
    except sqlite3.DatabaseError as e:
        if conn is not None:
            conn.close()
        dest = set_aside(path)
        warn(f"index: {path} could not be read ({e}); moved it to {dest} and rebuilding the index")
        return _create(path), True


def _schema_of(conn: sqlite3.Connection):
    row = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    if row is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    return int(row[0]) if row else None


def _create(path: str) -> sqlite3.Connection:
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    for stmt in TABLES.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('state', 'empty')")
    conn.execute("COMMIT")
    return conn
