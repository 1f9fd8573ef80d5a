"""Turning raw model output into a suggestion: single- or multi-line by context, cut at the end of the current
block (indentation, or braces for C-like languages), without lines that repeat the code after the cursor, without
degenerate repetition (a line or a run of lines three times over). `early_stop` lets generation end as soon as
the suggestion is settled."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ckls.completion.context import Context
from ckls.syntax import uses_braces

_CLOSERS = set(")]}>\"'`;:,. \t")
_REPEAT_IN_LINE = re.compile(r"(.{1,24}?)\1{3,}")
_OPENERS = (":", "{", "(", "[", "=>", "->", "\\")


def meaningful_text_right(line_suffix: str) -> bool:
    """True when the rest of the line holds more than closing brackets, quotes and punctuation."""
    return any(ch not in _CLOSERS for ch in line_suffix.rstrip("\r\n"))


def _indent(s: str) -> int:
    return len(s) - len(s.lstrip(" \t"))


@dataclass
class Shape:
    multiline: bool
    base_indent: int        # lines of the suggestion must stay indented at least this much
    braces: bool
    line_suffix: str
    next_line: str          # first non-blank line after the cursor's line, stripped
    # plain text continued (`ckls generate`), no code after it: the line closing a braces block belongs to the
    # text, and at the top level (base_indent 0) no block ends (only a loop, EOS or the token limit do)
    continuation: bool = False


def decide_shape(ctx: Context, multiline: str = "auto") -> Shape:
    before_line = ctx.line_prefix
    after_lines = ctx.after.split("\n")
    next_line = next((l.strip() for l in after_lines[1:] if l.strip()), "")
    braces = uses_braces(ctx.language_id, ctx.uri)
    if multiline == "always":
        multi = True
    elif multiline == "never":
        multi = False
    else:
        # a blank line (only indentation before the cursor, nothing after it) is where a block of code goes
        multi = not before_line.strip() and not ctx.line_suffix.strip()
        if not multi and not ctx.line_suffix.strip():
            # the cursor ends a line that opens a block: the body comes next
            multi = before_line.rstrip().endswith((":", "{")) and before_line.strip() != ""
    if before_line.strip():
        base = _indent(before_line)
    else:
        base = len(before_line.expandtabs(4)) if "\t" in before_line else len(before_line)
    return Shape(multi, base, braces, ctx.line_suffix, next_line)


def continuation_shape(before: str, braces: bool = False) -> Shape:
    """The shape of plain text continued after `before` (`ckls generate`): multi-line, and the block is the one
    the last line is in, or the one it opens (a line ending in ":" or "{" opens a block indented deeper)."""
    last = before.split("\n")[-1]
    if not last:  # at the start of a new line: the block of the last line with text
        last = next((ln for ln in reversed(before.split("\n")) if ln.strip()), "")
    ind = _indent(last.expandtabs(4))
    opens = last.rstrip().endswith((":", "{"))
    return Shape(True, ind + 1 if opens and last.strip() else ind, braces, "", "", continuation=True)


def _repeat_cut(lines: list[str]) -> int | None:
    """Where a loop starts over: the same non-trivial run of 1..4 lines three times in a row keeps only its first
    occurrence (the index of the second one), or None."""
    for i in range(len(lines)):
        for k in range(1, 5):
            a, b, c = lines[i:i + k], lines[i + k:i + 2 * k], lines[i + 2 * k:i + 3 * k]
            if len(c) == k and a == b == c and any(l.strip() for l in a):
                return i + k
    return None


class Post:
    def __init__(self, shape: Shape, max_lines: int = 8):
        self.shape = shape
        self.max_lines = max_lines

    def early_stop(self, text: str) -> bool:
        """True once more tokens cannot change the final suggestion."""
        if not self.shape.multiline:
            return "\n" in text
        lines = text.split("\n")
        if len(lines) > self.max_lines + 1:
            return True
        # the last line counts once it shows its indentation (a non-blank character)
        done = lines if lines[-1].strip() else lines[:-1]
        return len(done) > 1 and (self._block_end(done) is not None or _repeat_cut(lines[:-1]) is not None)

    def _block_end(self, lines: list[str]) -> int | None:
        """Index of the first line that is past the end of the block the cursor is in, or None."""
        sh = self.shape
        if sh.braces:
            depth = 0
            for i, l in enumerate(lines):
                code = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|//.*', "", l)
                for ch in code:
                    if ch in "{([":
                        depth += 1
                    elif ch in "})]":
                        depth -= 1
                        if depth < 0:
                            return i + 1 if sh.continuation else (i if i > 0 else None)
            return None
        if sh.continuation and sh.base_indent == 0:
            return None
        blank = 0
        for i, l in enumerate(lines):
            if i == 0:
                continue
            if not l.strip():
                blank += 1
                if blank >= 2:
                    return i - 1
                continue
            blank = 0
            ind = _indent(l.expandtabs(4)) if "\t" in l else _indent(l)
            if ind < sh.base_indent or (sh.base_indent == 0 and ind == 0 and _indent(lines[0]) == 0
                                         and i > 0 and lines[i - 1].strip() == ""):
                return i
        return None

    def finalize(self, text: str) -> str:
        sh = self.shape
        text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        if not sh.multiline:
            lines = lines[:1]
        else:
            end = self._block_end(lines)
            if end is not None:
                lines = lines[:end]
            lines = lines[: self.max_lines]
            # a line that repeats the code after the cursor means the model is re-typing it: stop before
            if sh.next_line and any(ch.isalnum() for ch in sh.next_line):  # not a lone "}"
                for i, l in enumerate(lines):
                    if i > 0 and l.strip() == sh.next_line:
                        lines = lines[:i]
                        break
            # the same non-trivial line (or run of up to 4 lines) three times in a row is a loop
            cut = _repeat_cut(lines)
            if cut is not None:
                lines = lines[:cut]
        # repetition inside a line: keep the first occurrence
        for i, l in enumerate(lines):
            m = _REPEAT_IN_LINE.search(l)
            if m and len(m.group(1).strip()) > 0:
                lines = lines[:i] + [l[: m.start() + len(m.group(1))]]
                break
        out = "\n".join(l.rstrip() for l in lines).rstrip()
        # the model retyped what already sits right of the cursor (e.g. a closing bracket): drop it
        tail = sh.line_suffix.strip()
        if tail and "\n" not in out and out.endswith(tail):
            out = out[: len(out) - len(tail)].rstrip() if out[: len(out) - len(tail)].strip() else ""
        if not out.strip():
            return ""
        return out
