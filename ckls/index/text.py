"""What the index cuts a file into and how it turns code into search terms: overlapping line windows, and the
identifier terms of a text (keywords dropped; optionally each snake_case / camelCase identifier's parts too)."""
from __future__ import annotations

import keyword
import re

WINDOW_LINES, WINDOW_STEP = 20, 10
QUERY_LINES = 15  # the query for a cursor: the identifiers of this many lines before it
ANCHOR_LINES = 8  # ... before the last line whose number is a multiple of this, at or above the cursor's line: the
                  # retrieved windows (the head of the prompt, and so its cached K/V) stay the same while the user
                  # types within those lines; retrieval moves once every ANCHOR_LINES lines
RETRIEVED_K = 2   # windows the server's prompt shows
WINDOW_CHARS = 900  # a retrieved window shown in a prompt: its first lines within this many characters
SHOW_SHIFT = 10     # ... from this many lines into the hit: the second half of what matched and the lines after it,
                    # which the cursor's next lines may repeat (bench/RESULTS.md: +0.005 to +0.018 line exact match
                    # over showing the hit itself on five projects, -0.001 on a sixth)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# words every file of a language is full of: they cost query time and say nothing about which code is similar
STOP = frozenset(keyword.kwlist) | frozenset("""self cls None True False auto break case char const continue default
do double else enum extern float for goto if inline int long register restrict return short signed sizeof static
struct switch typedef union unsigned void volatile while bool true false nullptr class namespace template typename
public private protected virtual override new delete this using size_t include define endif ifdef ifndef function
var let def import from""".split())


def windows(lines: list[str], size: int = WINDOW_LINES, step: int = WINDOW_STEP) -> list[tuple[int, str]]:
    """(first line, text) of overlapping windows of `size` lines every `step` lines; the tail is covered by a last
    window ending on the last line. Windows without any identifier are left out."""
    n = len(lines)
    starts = list(range(0, max(n - size, 0) + 1, step))
    if starts[-1] + size < n:
        starts.append(n - size)
    out = []
    for s in starts:
        text = "".join(lines[s:s + size])
        if _IDENT.search(text):
            out.append((s, text))
    return out


def terms(text: str, split: bool = False) -> list[str]:
    """Identifier terms of a text in order, lowercased, keywords and one-letter names dropped. split: a
    compound identifier (snake_case, camelCase) also yields its parts."""
    out = []
    for w in _IDENT.findall(text):
        lw = w.lower()
        if len(w) < 2 or lw in STOP:
            continue
        out.append(lw)
        if split:
            parts = [p.lower() for p in _PART.findall(w)]
            if len(parts) > 1:
                out.extend(p for p in parts if len(p) > 1 and p not in STOP)
    return out


def query_text(before: str, n_lines: int = QUERY_LINES) -> str:
    """The text a cursor's query is made of: the last n_lines lines before it, the word being typed excluded."""
    tail = "\n".join(before.split("\n")[-n_lines:])
    return re.sub(r"[A-Za-z0-9_]+$", "", tail)


def cursor_query(before: str, line: int, n_lines: int = QUERY_LINES, anchor: int = ANCHOR_LINES) -> str:
    """The retrieval query at a cursor on document line `line` (0-based) with `before` the text before it (at least
    the n_lines + anchor lines above it, when the document has them): the n_lines whole lines above the anchor line
    (line rounded down to a multiple of anchor). The server and the factory's training prompts both use this."""
    above = before.split("\n")[:-1]          # whole lines above the cursor's line
    drop = line % anchor                      # lines between the anchor and the cursor's line
    if drop:
        above = above[:-drop] if drop <= len(above) else []
    return "\n".join(above[-n_lines:])


def shown(text: str, max_chars: int = WINDOW_CHARS) -> str:
    """A retrieved window as a prompt shows it: its first whole lines within max_chars (one clipped line at least)."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind("\n", 0, max_chars)
    return text[:cut + 1] if cut > 0 else text[:max_chars] + "\n"
