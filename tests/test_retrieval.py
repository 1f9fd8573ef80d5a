"""Retrieval into the prompt: the anchored query, the cache, the head's order and budget, a file never retrieving
itself, the build giving way to completions, and the factory's training prompts retrieving exactly what the
server's index retrieves at the same cursor (one code path: ckls/index/rank.py, text.cursor_query)."""
from __future__ import annotations

import os
import random
import threading

from ckls.completion.context import build_context
from ckls.completion.retrieval import Retrieval, WorkspaceIndex
from ckls.index import Index
from ckls.index import text as T
from ckls.index.windows import WindowIndex, package_retriever

from test_index import synthetic_repo


def _lines(n):
    return "".join(f"line_{i} = value_{i}\n" for i in range(n))


def test_the_query_is_anchored_so_it_holds_while_typing_within_eight_lines():
    text = _lines(40)
    lines = text.splitlines(keepends=True)
    qs = [T.cursor_query("".join(lines[:ln]) + "partial_wo", ln) for ln in range(16, 32)]
    # lines 16..23 share one query, 24..31 the next: the lines above the anchor, QUERY_LINES of them
    assert len(set(qs[:8])) == 1 and len(set(qs[8:])) == 1 and qs[0] != qs[8]
    assert qs[0] == "".join(lines[1:16]).rstrip("\n") and "partial_wo" not in qs[0]
    assert T.cursor_query("", 0) == "" and T.cursor_query("x = 1\ny", 1) == ""  # above the first anchor: none
    assert T.cursor_query(_lines(8), 8) == _lines(8).rstrip("\n")


def test_shown_windows_are_clipped_on_lines():
    w = "".join(f"{'a' * 99}\n" for _ in range(20))
    s = T.shown(w, 450)
    assert s == w[:400] and T.shown("short\n") == "short\n" and len(T.shown("x" * 2000, 900)) == 901


class Counting:
    def __init__(self, index):
        self.index, self.calls = index, 0

    def search(self, q, k, exclude_path=None):
        self.calls += 1
        return self.index.search(q, k, exclude_path=exclude_path)

    def text_at(self, path, line, n):
        return self.index.text_at(path, line, n)


def test_retrieval_is_cached_per_anchor_until_the_index_changes(tmp_path):
    repo = str(tmp_path / "repo")
    synthetic_repo(repo, 40, seed=4)
    ix = Index(repo, tmp_path / "state")
    ix.build()
    c = Counting(ix)
    r = Retrieval(c)
    path = os.path.join(repo, "pkg3", "mod_3.py")
    text = open(path).read()
    lines = text.splitlines(keepends=True)
    before = "".join(lines[:16])
    a = r.retrieve(path, before + "x", 16)
    b = r.retrieve(path, before + "xyz", 16)
    assert a == b and c.calls == 1 and a and all(p != "pkg3/mod_3.py" for p, _ in a)
    r.changed()
    r.retrieve(path, before, 16)
    assert c.calls == 2


def test_the_head_leads_with_the_retrieved_windows_within_the_budget(tmp_path):
    repo = str(tmp_path / "repo")
    synthetic_repo(repo, 40, seed=5)
    ix = Index(repo, tmp_path / "state")
    ix.build()
    path = os.path.join(repo, "pkg1", "mod_1.py")
    lines = open(path).read().splitlines(keepends=True)
    n = min(len(lines) - 1, 24)
    before, after = "".join(lines[:n]), "".join(lines[n:])
    r = Retrieval(ix)
    ctx = build_context("file://" + path, "python", before, after, n, 0, 0, None, 4000, r)
    assert ctx.extra and ctx.extra == r.retrieve(path, before, n)
    assert all(where != "pkg1/mod_1.py" for where, _ in ctx.extra)
    small = build_context("file://" + path, "python", before, after, n, 0, 0, None, len(ctx.extra[0][1]), r)
    assert small.extra == ctx.extra[:1]


def test_training_prompts_retrieve_what_the_server_retrieves(tmp_path):
    """The factory indexes a package in memory (index/windows.py) and queries it at each training cursor; the
    server queries the SQLite index of the workspace: the same files give the same windows."""
    repo = str(tmp_path / "repo")
    synthetic_repo(repo, 60, seed=6)
    ix = Index(repo, tmp_path / "state")
    ix.build()
    files = sorted(p for p, in ix.conn.execute("SELECT path FROM files WHERE dropped IS NULL"))
    docs = [{"path": p, "text": open(os.path.join(repo, p)).read()} for p in files]
    train_side = package_retriever(docs)
    serve_side = Retrieval(ix)
    rng = random.Random(0)
    same = 0
    for d in rng.sample(docs, 20):
        lines = d["text"].splitlines(keepends=True)
        ln = rng.randrange(len(lines))
        before = "".join(lines[:ln]) + lines[ln][:rng.randrange(len(lines[ln]))]
        got = serve_side.retrieve(os.path.join(repo, d["path"]), before, ln)
        assert train_side(d["path"], before, 2) == got
        same += bool(got)
    assert same >= 10


def test_window_index_keeps_the_first_text_of_a_path():
    wi = WindowIndex()
    wi.add("a.py", "alpha_beta = gamma_delta\n")
    wi.add("a.py", "other_name = other_value\n")
    wi.add("b.py", "alpha_beta = 1\n")
    assert [w.path for w in wi.search("alpha_beta gamma_delta", 2)] == ["a.py", "b.py"]
    assert wi.search("other_name", 2) == []


def test_the_build_waits_while_a_completion_runs(tmp_path):
    repo = str(tmp_path / "repo")
    synthetic_repo(repo, 30, seed=7)
    wsi = WorkspaceIndex(repo, str(tmp_path / "state"))
    wsi.IDLE_S = 0.0
    seen, first = [], threading.Event()

    def progress(done, total):
        seen.append(done)
        first.set()

    wsi.begin()                                # a completion is running: no file is read
    done = threading.Event()
    t = wsi.start(progress=progress, done=lambda rep: done.set())
    assert not first.wait(0.3) and seen == []
    wsi.end()                                  # answered: the build goes on
    assert done.wait(60) and seen[-1] == 30
    t.join(10)
    wsi.saved(os.path.join(repo, "pkg0", "mod_0.py"), "def saved_here():\n    unique_saved_name = another_unique_name\n"
              "    return unique_saved_name + 1\n")
    hits = wsi.index.search("unique_saved_name another_unique_name", 1)
    assert hits and hits[0].path == "pkg0/mod_0.py"
    wsi.close()


def test_a_shift_shows_what_follows_the_match_on_both_sides(tmp_path):
    """at_cursor(shift=n) shows each hit from n lines further down, as many lines (the default: 10); the SQLite
    index and the factory's in-memory one agree on it too."""
    from ckls.index.windows import at_cursor

    body = "".join(f"value_{i} = compute_{i}(source_{i})\n" for i in range(60))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "other.py").write_text(body)
    (repo / "here.py").write_text("x = 1\n")
    ix = Index(str(repo), tmp_path / "state")
    ix.build()
    wi = WindowIndex()
    wi.add("other.py", body)
    before = "".join(f"value_{i} = compute_{i}(source_{i})\n" for i in range(20, 36))  # the file's lines 20..35
    for index, path in ((ix, str(repo / "here.py")), (wi, "here.py")):
        (p0, plain), = at_cursor(index, path, before, 16, 1, shift=0)
        (p1, moved), = at_cursor(index, path, before, 16, 1, shift=10)
        assert at_cursor(index, path, before, 16, 1) == [(p1, moved)]  # the default (T.SHOW_SHIFT)
        first = int(plain.split("_", 2)[1].split(" ")[0])
        assert p0 == p1 == "other.py" and moved.startswith(f"value_{first + 10} ")
        assert moved == T.shown("".join(body.splitlines(keepends=True)[first + 10:first + 10 + T.WINDOW_LINES]))
    assert ix.text_at("nowhere.py", 0, 5) == "" and wi.text_at("nowhere.py", 0, 5) == ""
    ix.close()
