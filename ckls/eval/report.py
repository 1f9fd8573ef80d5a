"""Summaries of eval records: one row per task and language plus totals, as a table and as JSON."""
from __future__ import annotations

import json
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
