"""Summaries of eval records: one row per task and language plus totals, as a table and as JSON."""
from __future__ import annotations

import json
import re
from dataclasses import asdict


def _row(task: str, lang: str, recs) -> dict:
    n = len(recs)
    lat = sorted(r.latency_ms for r in recs)
    return {
        "task": task, "language": lang, "samples": n,
        "exact_match": sum(r.em for r in recs) / n,
        "edit_similarity": sum(r.es for r in recs) / n,
        "block_exact_match": sum(r.block_em for r in recs) / n if task == "block" else None,
        "latency_ms_mean": sum(lat) / n,
        "latency_ms_p50": lat[n // 2],
        "empty": sum(not r.pred.strip() for r in recs) / n,
        "timed_out": sum(r.timed_out for r in recs),
    }


def summarize(records) -> list[dict]:
    rows = []
    for task in ("line", "block"):
        recs = [r for r in records if r.kind == task]
        if not recs:
            continue
        langs = sorted({r.language_id for r in recs})
        if len(langs) > 1:
            rows += [_row(task, l, [r for r in recs if r.language_id == l]) for l in langs]
        rows.append(_row(task, "all" if len(langs) > 1 else langs[0], recs))
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'task':<6} {'language':<10} {'samples':>7} {'EM':>6} {'edit sim':>8} {'empty':>6} {'latency ms':>10}"
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(f"{r['task']:<6} {r['language']:<10} {r['samples']:>7} {r['exact_match']:>6.3f} "
                   f"{r['edit_similarity']:>8.3f} {r['empty']:>6.2f} {r['latency_ms_mean']:>10.0f}")
    out.append("EM: line = the rest of the line; block = its first line. Edit similarity: 1 - normalized "
               "Levenshtein (block: the whole block).")
    return "\n".join(out)


def write_json(path: str, meta: dict, rows: list[dict], records) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump({**meta, "summary": rows, "samples": [asdict(r) for r in records]}, f, indent=1,
                  ensure_ascii=False)
        f.write("\n")


_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d[\w.]*|\"[^\"]*\"?|'[^']*'?|\S")
MISS_KINDS = ("empty", "whitespace", "stops early", "runs on", "mid-word", "wrong identifier", "wrong literal",
              "other")


def _token_at(s: str, i: int) -> str:
    for m in _TOKEN.finditer(s):
        if m.start() <= i < m.end() or m.start() >= i:
            return m.group(0)
    return ""


def classify(pred: str, target: str, line_prefix: str = "") -> str:
    """Why a line suggestion missed: empty; whitespace only; stops early (a proper prefix of the target); runs
    on (the target plus more); mid-word (the cursor sat inside an identifier and the suggestion does not finish
    it); wrong identifier / wrong literal (the first differing token is a name / a number or string in both);
    other. 'match' for a hit."""
    p, t = pred.rstrip(), target.rstrip()
    if p == t:
        return "match"
    if not p.strip():
        return "empty"
    if "".join(p.split()) == "".join(t.split()):
        return "whitespace"
    if t.startswith(p):
        return "stops early"
    if p.startswith(t):
        return "runs on"
    word = re.compile(r"\w")
    if line_prefix and word.match(line_prefix[-1:] or " ") and word.match(t[:1] or " ") and p[:1] != t[:1]:
        return "mid-word"
    k = 0
    while k < min(len(p), len(t)) and p[k] == t[k]:
        k += 1
    # back to the start of the token the difference falls in
    while k > 0 and word.match(t[k - 1]) and (k >= len(t) or word.match(t[k]) or word.match(p[k:k + 1] or " ")):
        k -= 1
    a, b = _token_at(p, k), _token_at(t, k)
    if a[:1].isalpha() or a[:1] == "_":
        if b[:1].isalpha() or b[:1] == "_":
            return "wrong identifier"
    if a[:1] in "0123456789\"'" and b[:1] in "0123456789\"'" and a and b:
        return "wrong literal"
    return "other"


def misses(records) -> dict[str, int]:
    """Counts of classify() over the line samples that missed."""
    out = {k: 0 for k in MISS_KINDS}
    for r in records:
        if r.kind == "line" and not r.em:
            out[classify(r.pred, r.target, getattr(r, "line_prefix", ""))] += 1
    return out
