"""Backends for the repository index, measured on one repository: SQLite FTS5 (ckls.index, the product) against
bm25s and tantivy on the same windows and terms.

    python bench/index.py --repo /path/to/sympy-1.14.0 [--cursors 400] [--backends fts5,fts5-split,bm25s,tantivy]

Build: the product's Index.build end to end for fts5 (read, filter, dedup, windows, terms, definitions, write); for
the others, the shared preparation (read + windows + terms, timed once) plus their own indexing and save.
Incremental: re-indexing one changed file (fts5: Index.update; tantivy: delete + add + commit + reload; bm25s has no
update: a full re-index). Queries: the identifiers of the 15 lines before a cursor; a file never retrieves itself.
Quality on cursors at line starts in held-out files (ckls.fim.split.held_out_files): of the top-k windows of OTHER
files, exact@k = one contains the target line (stripped, with an identifier), ident@k = together they contain
every identifier of the target line."""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ckls.fim.split import held_out_files  # noqa: E402
from ckls.index import Index  # noqa: E402
from ckls.index import text as T  # noqa: E402

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
K = (1, 4)


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000.0, q)) if xs else float("nan")


def cursors(ix: Index, repo: str, n: int, seed: int):
    """(path, line, query text, target line) at line starts of held-out files the index holds."""
    held = set(held_out_files(repo))
    rows = ix.conn.execute("SELECT f.path, t.text FROM files f JOIN texts t ON t.path = f.path "
                           "WHERE f.dropped IS NULL ORDER BY f.path").fetchall()
    cands = []
    for path, text in rows:
        if path not in held:
            continue
        lines = text.split("\n")
        for i in range(T.QUERY_LINES, len(lines)):
            tgt = lines[i].strip()
            if len(tgt) >= 8 and T.terms(tgt):
                cands.append((path, i, "\n".join(lines[i - T.QUERY_LINES:i]) + "\n", tgt))
    random.Random(seed).shuffle(cands)
    return cands[:n], len(held)


def hit(target: str, texts: list[str]) -> tuple[bool, bool]:
    exact = any(target == ln.strip() for t in texts for ln in t.split("\n"))
    need = {w for w in IDENT.findall(target) if len(w) > 1}
    have = set(IDENT.findall("\n".join(texts)))
    return exact, bool(need) and need <= have


def quality(search, cur):
    """search(query, k, exclude) -> [(path, text)]; returns recall dict and latencies."""
    rec = {f"{m}@{k}": 0 for m in ("exact", "ident") for k in K}
    lat = []
    for path, _, q, tgt in cur:
        t0 = time.perf_counter()
        got = search(q, max(K), path)
        lat.append(time.perf_counter() - t0)
        assert all(p != path for p, _ in got), "a file retrieved itself"
        for k in K:
            e, i = hit(tgt, [t for _, t in got[:k]])
            rec[f"exact@{k}"] += e
            rec[f"ident@{k}"] += i
    return {m: v / max(len(cur), 1) for m, v in rec.items()}, lat


def dedupe(cands, k, exclude):
    """The shared post-filter: drop the excluded file and windows overlapping a kept one of the same file."""
    out = []
    for path, line, text in cands:
        if path == exclude or any(p == path and abs(l - line) < T.WINDOW_LINES for p, l, _ in out):
            continue
        out.append((path, line, text))
        if len(out) == k:
            break
    return [(p, t) for p, _, t in out]


def prepared(ix: Index, split: bool):
    """[(path, line, text, terms)] of every window the index holds, and the seconds to make them from the texts."""
    t0 = time.perf_counter()
    docs = []
    for path, text in ix.conn.execute("SELECT path, text FROM texts ORDER BY path"):
        for line, w in T.windows(text.splitlines(keepends=True)):
            docs.append((path, line, w, T.terms(w, split)))
    return docs, time.perf_counter() - t0


def bench_fts5(repo, state, cur, split, n_update, caps=(48, 12, 8)):
    ix = Index(repo, state, split=split)
    paced = [0]
    t0 = time.perf_counter()
    rep = ix.build(pace=lambda: paced.__setitem__(0, paced[0] + 1))
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    ix.build()
    nochange = time.perf_counter() - t0
    upd_files = [p for (p,) in ix.conn.execute("SELECT path FROM files WHERE dropped IS NULL ORDER BY path")][::97][:n_update]
    ups = []
    for p in upd_files:
        text = open(os.path.join(repo, p), encoding="utf-8").read() + "\n# edited\nedited_name = 1\n"
        t0 = time.perf_counter()
        ix.update(p, text)
        ups.append(time.perf_counter() - t0)
    for p in upd_files:  # back to the files' own text
        ix.update(p)

    def search(q, k, ex):
        return [(w.path, w.text) for w in ix.search(q, k, ex)]
    st = ix.stats()
    out = {"build_s": build, "noop_rebuild_s": nochange, "update_ms_p50": pct(ups, 50), "update_ms_p95": pct(ups, 95),
           "disk_mb": st["bytes"] / 1e6, "files": st["files"], "windows": st["windows"],
           "definitions": st["definitions"], "paced": paced[0], "candidates": rep.total}
    for cap in caps:  # FTS5 matches the rarest `cap` terms, the best RERANK windows are re-scored on all (48: all)
        ix.max_terms = cap
        for path, _, q, _ in cur[:20]:  # warm the page cache and the term frequencies
            ix.search(q, 4, path)
        rec, lat = quality(search, cur)
        out[f"terms<={cap}"] = {"query_ms_p50": pct(lat, 50), "query_ms_p95": pct(lat, 95), **rec}
    ix.close()
    return out


def bench_bm25s(docs, prep_s, state, cur):
    import bm25s
    t0 = time.perf_counter()
    r = bm25s.BM25()
    r.index([d[3] for d in docs], show_progress=False)
    r.save(os.path.join(state, "bm25s"))
    index_s = time.perf_counter() - t0
    vocab = r.vocab_dict
    paths = np.array([d[0] for d in docs])

    def search(q, k, ex):
        toks = [t for t in dict.fromkeys(reversed(T.terms(q))) if t in vocab][:48]
        if not toks:
            return []
        mask = (paths != ex).astype(np.float32)
        ids, _ = r.retrieve([toks], k=4 * k, show_progress=False, weight_mask=mask)
        return dedupe([(docs[i][0], docs[i][1], docs[i][2]) for i in ids[0]], k, ex)
    rec, lat = quality(search, cur)
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(state, "bm25s")) for f in fs)
    return {"build_s": prep_s + index_s, "update_ms_p50": index_s * 1000, "update_ms_p95": index_s * 1000,
            "query_ms_p50": pct(lat, 50), "query_ms_p95": pct(lat, 95), "disk_mb": size / 1e6, **rec}


def bench_tantivy(docs, prep_s, state, cur, n_update):
    import tantivy
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("path", stored=True, tokenizer_name="raw")
    sb.add_integer_field("line", stored=True, indexed=False)
    sb.add_text_field("terms", stored=False, tokenizer_name="whitespace")
    schema = sb.build()
    d = os.path.join(state, "tantivy")
    os.makedirs(d)
    ix = tantivy.Index(schema, path=d)
    t0 = time.perf_counter()
    w = ix.writer(heap_size=100_000_000, num_threads=1)
    for path, line, _, terms in docs:
        w.add_document(tantivy.Document(path=path, line=line, terms=" ".join(terms)))
    w.commit()
    w.wait_merging_threads()
    index_s = time.perf_counter() - t0
    ix.reload()
    by_key = {(p, l): t for p, l, t, _ in docs}
    by_path: dict[str, list] = {}
    for p, l, t, terms in docs:
        by_path.setdefault(p, []).append((l, terms))
    ups = []
    w = ix.writer(heap_size=50_000_000, num_threads=1)
    for p in sorted(by_path)[::97][:n_update]:
        t0 = time.perf_counter()
        w.delete_documents_by_term("path", p)
        for l, terms in by_path[p]:
            w.add_document(tantivy.Document(path=p, line=l, terms=" ".join(terms + ["edited_name"])))
        w.commit()
        ix.reload()
        ups.append(time.perf_counter() - t0)
    w.wait_merging_threads()
    counts = {p: len(v) for p, v in by_path.items()}

    def search(q, k, ex):
        toks = list(dict.fromkeys(reversed(T.terms(q))))[:48]
        if not toks:
            return []
        query = tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(schema, "terms", t))
                                             for t in toks])
        s = ix.searcher()
        res = s.search(query, 4 * k + counts.get(ex, 0)).hits
        cands = []
        for _, addr in res:
            doc = s.doc(addr)
            p, l = doc["path"][0], doc["line"][0]
            cands.append((p, l, by_key[(p, l)]))
        return dedupe(cands, k, ex)
    rec, lat = quality(search, cur)
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    return {"build_s": prep_s + index_s, "update_ms_p50": pct(ups, 50), "update_ms_p95": pct(ups, 95),
            "query_ms_p50": pct(lat, 50), "query_ms_p95": pct(lat, 95), "disk_mb": size / 1e6, **rec}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--cursors", type=int, default=400)
    ap.add_argument("--updates", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backends", default="fts5,fts5-split,bm25s,tantivy")
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ckls-index-bench-")
    out = {"repo": a.repo, "python": platform.python_version(), "loadavg_start": os.getloadavg()}
    try:
        state = os.path.join(tmp, "fts5")
        ix = Index(a.repo, state)  # the reference build: the cursors and the windows the others index
        ix.build()
        cur, n_held = cursors(ix, a.repo, a.cursors, a.seed)
        out.update(cursors=len(cur), held_out_files=n_held)
        res = {}
        for b in a.backends.split(","):
            st = os.path.join(tmp, b + "-run")
            os.makedirs(st)
            if b in ("fts5", "fts5-split"):
                res[b] = bench_fts5(a.repo, st, cur, b == "fts5-split", a.updates)
            else:
                docs, prep_s = prepared(ix, False)
                res[b] = (bench_bm25s(docs, prep_s, st, cur) if b == "bm25s" else
                          bench_tantivy(docs, prep_s, st, cur, a.updates))
                res[b]["prepare_s"] = prep_s
            print(b, json.dumps(res[b]), flush=True)
        ix.close()
        out["results"] = res
        out["loadavg_end"] = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
