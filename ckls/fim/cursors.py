"""Fill-in-the-middle examples shaped like the server's prompts at an editor's cursor (layout.py's layout).

A random FIM cut of a whole file (fill.layout) teaches infilling poorly for completion: files average ~4,000
tokens, so in 1,024-token training windows the <|fim_middle|> rarely sits next to its prefix, and the cut lands
where no cursor would. Here each example is what the server builds (ckls/completion/prompt.py, from the same layout.py) at
a cursor an editor would have:

  head:   (<|file_sep|> name \\n snippet)*  <|file_sep|> name \\n      — definitions/chunks from the same package
  SPM:    head <|fim_suffix|> suffix <|fim_prefix|> prefix <|fim_middle|> middle <|endoftext|>   (PSM likewise)

with the prefix on whole lines within a character budget, the suffix on whole lines, and the cursor at:
  line   a random point inside a non-blank line; middle = the rest of that line   (the eval's "line" task)
  block  the first line of an indented block, after its indentation; middle = the block
  lines  the start of a line, after its indentation; middle = 1..3 whole lines
  span   anywhere; middle = up to ~3 lines of characters
The server heals the prefix (drops its last word; the model re-spells it: completion/heal.py), so the encoder
(layout.render, train/fim.encode_layouts) moves the prefix's last word into the middle the same way ("pre" pieces).
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from . import layout
from .tokens import EOT

MODES = ("line", "block", "lines", "span")
MODE_WEIGHTS = (0.5, 0.2, 0.2, 0.1)  # a middle that ends mid-line is rare at a cursor: such examples taught a
                                     # 34M model to stop lines early (line EM 0.228, "stops early" 7 → 47)
MAX_LINE = 200                  # longer lines are data, not code where a cursor lands
PREFIX_CHARS = (800, 2800)      # prefix budget drawn in this range (~220–760 tokens at ~3.7 bytes/token)
SUFFIX_CHARS = (0, 900)
HEAD_CHARS = 1800              # retrieved windows, a chunk and definitions (the server's extra context, ~512 tokens)
TOTAL_CHARS = 3800              # head + prefix + suffix: the example fits a 1,024-token window
CONTEXT_CHARS_PER_TOKEN = 3.5   # code averages ~3.7 characters per token: an example of this many fits its window
RETRIEVED_K = ((2, 0.6), (1, 0.25), (0, 0.15))  # windows retrieved for an example, with their odds: the server
                                                # shows 2 once the index is built, none before
CHARS_PER_EXAMPLE = 3000        # a file gives one example per this many characters (at least one, at most 8)

_DEF = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)[^\n]*", re.M)
_IDENT = re.compile(r"[A-Za-z_]\w*")


def _indent(s: str) -> int:
    return len(s) - len(s.lstrip(" \t"))


def _block_end(lines: list[str], j: int) -> int:
    """One past the last line of the indentation block starting at line j (blank lines inside kept)."""
    ind, last = _indent(lines[j]), j
    for k in range(j + 1, len(lines)):
        if lines[k].strip():
            if _indent(lines[k]) < ind:
                break
            last = k
    return last + 1


def cut(text: str, rng: np.random.Generator, mode: str | None = None) -> tuple[int, int] | None:
    """(a, b): the cursor at a and the middle text[a:b] for one of MODES (drawn by MODE_WEIGHTS), or None when
    the file offers no such position."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return None
    starts = np.cumsum([0] + [len(l) for l in lines])
    mode = mode or MODES[rng.choice(len(MODES), p=MODE_WEIGHTS)]
    cand = [i for i, l in enumerate(lines) if l.strip() and len(l) <= MAX_LINE]
    if mode == "span" or not cand:
        if len(text) < 2:
            return None
        a = int(rng.integers(0, len(text)))
        return a, min(len(text), a + 1 + int(rng.geometric(1 / 60)))
    if mode == "line":
        i = cand[rng.integers(len(cand))]
        body = lines[i].rstrip("\r\n")
        end = len(body.rstrip())
        col = int(rng.integers(_indent(body), end))
        return int(starts[i]) + col, int(starts[i]) + end
    if mode == "block":
        opens = [i + 1 for i in range(len(lines) - 1)
                 if lines[i].split("#", 1)[0].rstrip().endswith((":", "{")) and lines[i + 1].strip()
                 and _indent(lines[i + 1]) > _indent(lines[i])]
        if opens:
            j = opens[rng.integers(len(opens))]
            end = _block_end(lines, j)
            return int(starts[j]) + _indent(lines[j]), int(starts[end - 1]) + len(lines[end - 1].rstrip())
        mode = "lines"
    i = cand[rng.integers(len(cand))]  # "lines"
    k = min(len(lines), i + 1 + int(rng.integers(0, 3)))
    return int(starts[i]) + _indent(lines[i]), int(starts[k - 1]) + len(lines[k - 1].rstrip())


def definitions(text: str) -> dict[str, str]:
    """name -> the line that defines it (def/class lines of Python source, any indentation)."""
    return {m.group(1): m.group(0).strip() for m in _DEF.finditer(text)}


def _prefix(before: str, budget: int) -> str:
    if len(before) <= budget:
        return before
    nl = before.find("\n", len(before) - budget)
    return before[nl + 1:] if nl >= 0 else before[-budget:]


def _suffix(after: str, budget: int) -> str:
    if len(after) <= budget:
        return after
    nl = after.rfind("\n", 0, budget)
    return after[:nl + 1] if nl > 0 else after[:budget]


def head(prefix: str, name: str, package_defs: dict[str, tuple[str, str]], chunks: list[tuple[str, str]],
         rng: np.random.Generator, budget: int = HEAD_CHARS, retrieved: list[tuple[str, str]] = ()) -> list:
    """Pieces of the cross-file head, in the server's order (completion/context.py, ExtraContext.render): windows
    of other files retrieved from the repository index, a random chunk of another file (the server's ring of
    recent chunks), definitions of names used near the cursor that live in other files of the package; then the
    file's name."""
    entries, used = [], 0
    for where, text in retrieved:
        if used + len(text) > budget:
            break
        entries.append((where, text))
        used += len(text)
    defs = []
    near = _IDENT.findall(prefix[-600:])
    seen = set()
    for n in reversed(near):
        if n in seen or n not in package_defs:
            continue
        seen.add(n)
        where, line = package_defs[n]
        if where == name or line in prefix:
            continue
        if used + len(line) > budget:
            break
        defs.append((where, f"{line}\n"))
        used += len(line)
        if len(seen) >= 6:
            break
    if chunks and rng.random() < 0.5:
        where, text = chunks[rng.integers(len(chunks))]
        if where != name:
            ls = text.splitlines(keepends=True)
            s = int(rng.integers(0, max(1, len(ls) - 8)))
            piece = "".join(ls[s:s + int(rng.integers(4, 17))])
            if piece.strip() and used + len(piece) <= budget:
                entries.append((where, piece))
    entries += defs
    if not entries and rng.random() < 0.5:
        return []
    return layout.head(entries, name) if entries else [(layout.FILE_SEP,), f"{name}\n"]


def example(text: str, name: str, rng: np.random.Generator, spm_rate: float = 0.7,
            package_defs: dict[str, tuple[str, str]] | None = None,
            chunks: list[tuple[str, str]] | None = None, total_chars: int = TOTAL_CHARS,
            retrieve: Callable[[str, int], list[tuple[str, str]]] | None = None) -> list | None:
    """One server-shaped example as encoder pieces (see fim.encode_stream), or None. total_chars below
    TOTAL_CHARS scales the prefix, suffix and head budgets down from the factory's (a shorter example for a cheaper
    training step); above it, the prefix no longer gives way to the head and suffix (2,048-token windows hold the
    server's whole prompt: head, prefix and suffix each up to its budget).
    retrieve(text before the cursor, k) gives the (path, text) windows the server's index would retrieve there."""
    c = cut(text, rng)
    if c is None or c[1] <= c[0]:
        return None
    a, b = c
    k = min(1.0, total_chars / TOTAL_CHARS)
    retrieved = []
    if retrieve is not None:  # (no draw without it: the tuner's examples stay as they were)
        n_ret = [n for n, _ in RETRIEVED_K][rng.choice(len(RETRIEVED_K), p=[p for _, p in RETRIEVED_K])]
        retrieved = retrieve(text[:a], n_ret) if n_ret else []
    suffix = _suffix(text[b:], int(k * rng.integers(*SUFFIX_CHARS)))
    head_budget = int(k * HEAD_CHARS)
    ret_chars = 0
    for _, t in retrieved:
        if ret_chars + len(t) > head_budget:
            break
        ret_chars += len(t)
    head_budget = min(head_budget, ret_chars + int(k * 800))  # a chunk and definitions: up to 800 more
    room = max(total_chars, TOTAL_CHARS) - len(suffix) - head_budget  # above TOTAL_CHARS: the server's budgets whole
    prefix = _prefix(text[:a], int(k * min(int(rng.integers(*PREFIX_CHARS)), room)))
    hd = head(prefix, name, package_defs or {}, chunks or [], rng, head_budget, retrieved)
    return layout.example(hd, prefix, suffix, text[a:b], "spm" if rng.random() < spm_rate else "psm")


def package_layouts(docs: list[dict], rng: np.random.Generator, fim_rate: float, spm_rate: float = 0.7,
                    chars_per_example: int = CHARS_PER_EXAMPLE, max_examples: int = 8,
                    total_chars: int = TOTAL_CHARS, pace=None, retriever=None):
    """Layouts for the files of one package: every file as plain text (unless fim_rate is 1), and for a share
    fim_rate of them also one server-shaped example per chars_per_example characters (at least one, at most
    max_examples). Yields (doc index, layout). pace(), when given, is called before each file's work (the tuner
    gives way to the user there). retriever(docs), when given, returns retrieve(path, text before the cursor, k):
    the windows of the package's other files the server's index would put in the prompt there."""
    names = [d["path"].rsplit("/", 1)[-1] for d in docs]
    defs: dict[str, tuple[str, str]] = {}
    for d, nm in zip(docs, names):
        if pace is not None:
            pace()
        if d.get("lang", "python") == "python":
            for k, v in definitions(d["text"]).items():
                defs.setdefault(k, (nm, v))
    chunks = list(zip(names, (d["text"] for d in docs)))
    search = retriever(docs) if retriever is not None else None
    for i, (d, nm) in enumerate(zip(docs, names)):
        if pace is not None:
            pace()
        text = d["text"]
        if fim_rate < 1.0:
            yield i, [text, (EOT,)]
        if rng.random() >= fim_rate or len(text) < 2:
            continue
        for _ in range(min(max_examples, max(1, len(text) // chars_per_example))):
            ret = (lambda before, k, p=d["path"]: search(p, before, k)) if search is not None else None
            lay = example(text, nm, rng, spm_rate, defs, chunks, total_chars, ret)
            if lay is not None:
                yield i, lay


def is_example(layout: list) -> bool:
    return bool(layout) and layout[-1] == (EOT, "end")
