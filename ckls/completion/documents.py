"""Open documents as lists of lines, with LSP positions mapped exactly: columns in UTF-16 code units unless the
client negotiated UTF-8 or UTF-32; line breaks \\n, \\r\\n and \\r. Lines keep their terminators; the last line
has none. An edit splices only the lines it touches, so a keystroke in a 10 MB file costs a list splice, not a
re-split of the file."""
from __future__ import annotations

import re

# A line with its terminator, or a last line without one. The second branch matters: with only the first, a
# findall re-scans a last line that has no terminator from every offset in it — quadratic (40 KB took 5.6 s, 5 MB
# never returned). With it, each offset is scanned once: linear in the text.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def split_lines(text: str) -> list[str]:
    """Lines with their terminators; the last one (maybe empty) has none."""
    lines = _LINE.findall(text)
    if not lines or lines[-1][-1] in "\r\n":
        lines.append("")
    return lines


def _body(line: str) -> str:
    return line.rstrip("\r\n")


def _units(ch: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(ch.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return 1
    return 2 if ord(ch) > 0xFFFF else 1


_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")  # two UTF-16 code units each
_SURROGATE = re.compile("[\ud800-\udfff]")


def units_to_index(line: str, units: int, encoding: str = "utf-16") -> int:
    """Code-point index in line for a column in the negotiated encoding's code units (UTF-16 unless the client
    chose otherwise), clamped to the line's text; a column inside a character moves past it. Linear in the column
    at C speed (a multi-megabyte line of non-ASCII text is a real document)."""
    body = _body(line)
    if units <= 0:
        return 0
    if encoding == "utf-32" or body.isascii():
        return min(units, len(body))
    if encoding == "utf-8":
        raw = body[:units].encode("utf-8", "surrogatepass")  # the first `units` characters hold the column
        end = min(units, len(raw))
        while end < len(raw) and raw[end] & 0xC0 == 0x80:  # inside a character: past it
            end += 1
        return len(raw[:end].decode("utf-8", "surrogatepass"))
    if not _ASTRAL.search(body, 0, units):  # no surrogate pairs before the column: units are code points
        return min(units, len(body))
    if not _SURROGATE.search(body, 0, units):  # (a lone surrogate would pair with its neighbour in a round trip)
        raw = body[:units].encode("utf-16-le")
        end = 2 * units
        if end < len(raw) and 0xDC <= raw[end + 1] <= 0xDF:  # inside a pair: past it
            end += 2
        return len(raw[:end].decode("utf-16-le"))
    n = 0
    for i, ch in enumerate(body):
        if n >= units:
            return i
        n += _units(ch, encoding)
    return len(body)


def index_to_units(line: str, index: int, encoding: str = "utf-16") -> int:
    head = line[:index]
    if head.isascii() or encoding == "utf-32":
        return len(head)
    if encoding == "utf-8":
        return len(head.encode("utf-8", "surrogatepass"))
    return len(head) + len(_ASTRAL.findall(head))


def utf16_to_index(line: str, units: int) -> int:
    return units_to_index(line, units, "utf-16")


def index_to_utf16(line: str, index: int) -> int:
    return index_to_units(line, index, "utf-16")


class Document:
    def __init__(self, uri: str, text: str, language_id: str = "", version: int = 0, encoding: str = "utf-16"):
        self.uri = uri
        self.encoding = encoding
        self.language_id = language_id or ""
        self.version = version
        self.lines = split_lines(text)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def __len__(self) -> int:
        return sum(map(len, self.lines))

    def around_line(self, line: int) -> tuple[str, str]:
        """(the text before line `line`, the text after it): the file as the repo memory holds it while the cursor
        is on that line, in two parts so that no remembered sequence runs from the one into the other (joined,
        the lines before the cursor would be "followed" by the line after it, which the prompt's context matches
        in full)."""
        return "".join(self.lines[:line]), "".join(self.lines[line + 1:])

    def clamp(self, line: int, character: int) -> tuple[int, int]:
        """(line, code-point column) for an LSP position, clamped into the document."""
        if line < 0:
            return 0, 0
        if line >= len(self.lines):
            last = len(self.lines) - 1
            return last, len(_body(self.lines[last]))
        return line, units_to_index(self.lines[line], character, self.encoding)

    def apply_change(self, start: tuple[int, int] | None, end: tuple[int, int] | None, text: str) -> None:
        """Applies one content change; start/end are LSP (line, utf16) positions, None for a full replacement."""
        if start is None or end is None:
            self.lines = split_lines(text)
            return
        sl, sc = self.clamp(*start)
        el, ec = self.clamp(*end)
        if (el, ec) < (sl, sc):
            sl, sc, el, ec = el, ec, sl, sc
        head = self.lines[sl][:sc]
        tail = self.lines[el][ec:]
        if sl == el and "\r" not in text and "\n" not in text and (head or text or tail[:1] != "\n"):
            # a keystroke inside one line (head and tail hold no line break but the line's own terminator): the
            # lines stay as they are, no re-split (in a 5 MB line that would be a scan of it per keystroke); a
            # line left as a bare "\n" may join a "\r" above it, which the general path below handles
            self.lines[sl] = head + text + tail
            return
        stop = el + 1
        # a trailing "\r" may pair with a "\n" that starts the next line: re-split across that seam too
        joined = head + text + tail
        if joined.endswith("\r") and stop < len(self.lines):
            joined += self.lines[stop]
            stop += 1
        if sl > 0 and self.lines[sl - 1].endswith("\r") and not self.lines[sl - 1].endswith("\r\n") \
                and joined.startswith("\n"):
            sl -= 1
            joined = self.lines[sl] + joined
        new = split_lines(joined)
        if stop < len(self.lines) and new[-1] == "":
            new.pop()  # the split's empty final line is the start of the line that follows
        elif stop < len(self.lines):
            new[-1] += self.lines[stop]
            stop += 1
        self.lines[sl:stop] = new

    def window(self, line: int, character: int, before_chars: int, after_chars: int):
        """Text around a position: (before, after, first_line_of_before, cursor line, cursor column), at most
        before_chars/after_chars long and starting/ending on whole lines where possible."""
        line, col = self.clamp(line, character)
        cur = self.lines[line]
        parts = [cur[:col]]
        n = col
        first = line
        while first > 0 and n < before_chars:
            first -= 1
            parts.append(self.lines[first])
            n += len(self.lines[first])
        before = "".join(reversed(parts))
        if len(before) > before_chars:  # the first line alone was too long: cut inside it
            before = before[len(before) - before_chars:]
        parts = [cur[col:]]
        n = len(parts[0])
        last = line
        while last + 1 < len(self.lines) and n < after_chars:
            last += 1
            parts.append(self.lines[last])
            n += len(self.lines[last])
        after = "".join(parts)[:after_chars]
        return before, after, first, line, col

    def line_text(self, line: int) -> str:
        return _body(self.lines[line]) if 0 <= line < len(self.lines) else ""


class DocumentStore:
    def __init__(self):
        self.docs: dict[str, Document] = {}
        self.encoding = "utf-16"  # the position encoding negotiated at initialize

    def open(self, uri: str, text: str, language_id: str, version: int) -> Document:
        doc = Document(uri, text, language_id, version, self.encoding)
        self.docs[uri] = doc
        return doc

    def get(self, uri: str) -> Document | None:
        return self.docs.get(uri)

    def close(self, uri: str) -> None:
        self.docs.pop(uri, None)
