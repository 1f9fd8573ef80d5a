"""No suggestion that leaves the cursor's line syntactically open: while the line (text before the cursor plus
what the model wrote) has an unclosed string, ends in an operator or a keyword that needs an operand, or ends in
an operand inside an unclosed bracket, the model's end-of-text tokens are masked, so it goes on writing instead
of stopping after `clas`+`s` or `isinstance(x`. A line may end after an opening bracket or a comma: calls and
literals go on over several lines.

Only for single-line suggestions on a line with nothing right of the cursor: there the rest of the line is all
the model's to write (closers typed or auto-inserted right of the cursor belong to the user's text). A newline
is never masked: a call or literal may go on to the next line.
"""
from __future__ import annotations

import re

import numpy as np

_PAIRS = {")": "(", "]": "[", "}": "{"}
_NEEDS_OPERAND = re.compile(
    r"(?:[=+\-*/%&|^~<>!@]|\b(?:class|def|import|from|in|and|or|not|is|if|elif|while|for|with|as|lambda|"
    r"assert|await|del|global|nonlocal)\b)\s*$")
_SEPARATORS = re.compile(r"(?:->|=>|:=)\s*$")


def line_open(line: str, c_like: bool = False) -> bool:
    """True when the line cannot end here: an unclosed quote opened on it, a trailing operator (`=`, `+`, `.`,
    ...) or keyword (`class`, `import`, `in`, ...), or an operand inside an unclosed (, [, {. A comment (`#`;
    `//` in C-like languages) ends the scan. A trailing `.` does not count: prose in a docstring ends with one."""
    stack: list[str] = []
    quote = ""
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif (c == "#" and not c_like) or (c_like and line.startswith("//", i)):
            return bool(stack)
        elif c in "\"'":
            quote = line[i:i + 3] if line[i:i + 3] in ('"""', "'''") else c
            i += len(quote)
            continue
        elif c in "([{":
            stack.append(c)
        elif c in _PAIRS:
            if stack and stack[-1] == _PAIRS[c]:
                stack.pop()
            elif not stack:
                pass  # closes something opened on an earlier line
        i += 1
    if quote and len(quote) == 1:
        return True
    code = line.rstrip()
    if stack and code and code[-1] not in "([{,":
        # inside brackets a line may end after an opener or a comma (a call or literal over several lines);
        # after an operand it goes on (`isinstance(x` needs `, T)`)
        return True
    if not code.strip() or _SEPARATORS.search(code):
        return bool(_SEPARATORS.search(code))
    if c_like and code.lstrip().startswith("#"):
        return False  # preprocessor lines (`#include <x.h>`)
    return bool(_NEEDS_OPERAND.search(code)) and not code.endswith(("import *", "*/", "...", "++", "--")) \
        and not (c_like and code.endswith(">"))  # C++ `vector<int>`


class EndGuard:
    """constrain(logits) masks the stop ids while the line is open; feed(text) gives the suggestion so far."""

    def __init__(self, line_prefix: str, stop_ids, active: bool, c_like: bool = False):
        self.prefix, self.c_like = line_prefix, c_like
        self.stop_ids = np.asarray(sorted(stop_ids), dtype=np.int64)
        self.active = active and len(self.stop_ids) > 0
        self.open = self.active and line_open(line_prefix, c_like)

    def feed(self, text: str) -> None:
        if not self.active:
            return
        if "\n" in text:      # the line is finished either way; the next one is not ours to guard
            self.active = self.open = False
            return
        self.open = line_open(self.prefix + text, self.c_like)

    def constrain(self, logits: np.ndarray) -> None:
        if self.open:
            logits[self.stop_ids] = -np.inf
