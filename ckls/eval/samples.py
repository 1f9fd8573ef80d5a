"""Completion positions in held-out files, each with the document the editor would show and the text the
author went on to write.

line:  the cursor at a random point inside a non-blank line; the rest of that line is removed from the document
       (the lines below stay: they are the suffix) and is the target.
block: the cursor on the first line of an indented block (a function body, a loop body...: the line after one
       that ends with ':' in Python or '{' in C-like languages), after its indentation; the block up to its
       dedent or closing brace is removed and is the target, cut to the server's max_lines."""
from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass

from ckls.syntax import EXTENSIONS, uses_braces

MAX_LINE_CHARS = 200          # longer lines are data, not code worth sampling


@dataclass(frozen=True)
class Sample:
    kind: str          # "line" or "block"
    path: str          # relative to the repo
    language_id: str
    text: str          # the document as the editor holds it at the cursor
    line: int          # 0-based cursor line in text
    col: int           # 0-based cursor column, in characters
    target: str        # what the author wrote next (one line for "line" samples)


def _indent(s: str) -> int:
    return len(s) - len(s.lstrip(" \t"))


def line_positions(lines: list[str]) -> list[int]:
    return [i for i, l in enumerate(lines) if l.strip() and len(l) <= MAX_LINE_CHARS]


def line_sample(path: str, language_id: str, lines: list[str], i: int, rng: random.Random) -> Sample:
    """The cursor at a random column of line i, from its indentation to just before its last non-blank
    character (so the target is never empty)."""
    body = lines[i].rstrip("\r\n")
    end = len(body.rstrip())
    col = rng.randrange(_indent(body), end)
    text = "".join(lines[:i]) + body[:col] + "\n" + "".join(lines[i + 1:])
    return Sample("line", path, language_id, text, i, col, body[col:end])


_STRING_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|//.*|/\*.*?\*/')


def _block_end(lines: list[str], j: int, braces: bool) -> int | None:
    """Index one past the last line of the block that starts at line j (trailing blank lines excluded), or
    None when the block does not close in this file."""
    if braces:
        depth = 0
        for k in range(j, len(lines)):
            code = _STRING_OR_COMMENT.sub("", lines[k])
            for ch in code:
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth < 0:
                        # the closing brace must start its own line, or the block's text is not whole lines
                        return k if lines[k].strip().startswith("}") and k > j else None
        return None
    ind = _indent(lines[j])
    last = j
    for k in range(j + 1, len(lines)):
        if not lines[k].strip():
            continue
        if _indent(lines[k]) < ind:
            break
        last = k
    return last + 1


def block_positions(lines: list[str], braces: bool) -> list[tuple[int, int]]:
    """(first, end) line ranges of blocks: after a line ending with ':' (Python) or '{' (braces), the next
    non-blank line is more indented than the opener."""
    out = []
    opener = "{" if braces else ":"
    for i, l in enumerate(lines):
        s = l.split("#", 1)[0].rstrip() if not braces else _STRING_OR_COMMENT.sub("", l).rstrip()
        if not s.endswith(opener) or len(l) > MAX_LINE_CHARS:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or _indent(lines[j]) <= _indent(l) or "\t" in lines[j][:_indent(lines[j])]:
            continue
        end = _block_end(lines, j, braces)
        if end is not None and end > j:
            out.append((j, end))
    return out


def block_sample(path: str, language_id: str, lines: list[str], first: int, end: int, max_lines: int) -> Sample:
    ind = lines[first][:_indent(lines[first])]
    block = [l.rstrip("\r\n").rstrip() for l in lines[first:end]]
    block[0] = block[0][len(ind):]
    target = "\n".join(block[:max_lines]).rstrip()
    text = "".join(lines[:first]) + ind + "\n" + "".join(lines[end:])
    return Sample("block", path, language_id, text, first, len(ind), target)


def read_lines(path: str) -> list[str] | None:
    """Lines with their ends ('\n' added to the last), or None for files that are not UTF-8 text."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except (UnicodeDecodeError, OSError):
        return None
    if "\0" in text:
        return None
    lines = text.replace("\r\n", "\n").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def make_samples(repo: str, files: list[str], n_line: int, n_block: int, seed: int = 0,
                 max_lines: int = 8) -> list[Sample]:
    """n_line line and n_block block samples drawn uniformly over all candidate positions of the files (a long
    file gives more), in a fixed order for a given seed; grouped by file, then by position."""
    rng = random.Random(seed)
    texts: dict[str, list[str]] = {}
    line_cands: list[tuple[str, int]] = []
    block_cands: list[tuple[str, int, int]] = []
    for rel in sorted(files):
        lines = read_lines(os.path.join(repo, rel))
        if not lines:
            continue
        texts[rel] = lines
        line_cands += [(rel, i) for i in line_positions(lines)]
        block_cands += [(rel, a, b) for a, b in block_positions(lines, uses_braces(_language_id(rel), rel))]
    picked_lines = sorted(rng.sample(line_cands, min(n_line, len(line_cands))))
    picked_blocks = sorted(rng.sample(block_cands, min(n_block, len(block_cands))))
    out = [line_sample(rel, _language_id(rel), texts[rel], i, rng) for rel, i in picked_lines]
    out += [block_sample(rel, _language_id(rel), texts[rel], a, b, max_lines) for rel, a, b in picked_blocks]
    out.sort(key=lambda s: (s.path, s.line, s.kind))
    return out


def _language_id(rel: str) -> str:
    return EXTENSIONS.get(os.path.splitext(rel)[1].lower(), "plaintext")
