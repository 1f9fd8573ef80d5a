"""What the model sees besides the cursor's own text: the enclosing scope (tree-sitter), definitions of names used
near the cursor, and a ring of chunks from recently opened/edited/saved files. The extra context is rendered
oldest-first and changes only when a chunk or a definition is added, so between keystrokes the prompt's head stays
the same and the model's cached K/V for it survives."""
from __future__ import annotations

import keyword
import logging
import re
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from ckls.syntax import SYNTAX, extract_definitions, language_of, name_of, parser_for  # noqa: F401  (extract_definitions: context's API)

log = logging.getLogger("ckls.completion")

INDEX_LIMIT = 1 << 20  # files larger than this (characters) are not parsed for definitions
MAX_CHUNK_CHARS = 16384  # a chunk of recent code longer than this is not kept (the extra budget is ~1,500 chars)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void volatile
while bool true false nullptr class namespace template typename public private protected virtual override new delete
this using const_cast static_cast dynamic_cast reinterpret_cast __global__ __device__ __host__ __shared__ size_t
int32_t int64_t uint32_t uint64_t uint8_t int8_t float4 dim3 threadIdx blockIdx blockDim gridDim std include define
self cls None True False print len range""".split())


@dataclass
class Scope:
    kind: str            # tree-sitter node type, e.g. function_definition
    name: str | None
    start_line: int      # relative to the text that was parsed
    header: str          # first line of the scope


@dataclass
class Context:
    """Everything the prompt and the post-processing need about one completion position."""
    uri: str
    path: str
    language_id: str
    before: str                      # text before the cursor (a window, starting on a line start if possible)
    after: str                       # text after the cursor (a window)
    line_prefix: str                 # current line up to the cursor
    line_suffix: str                 # rest of the current line
    line: int = 0
    col: int = 0
    before_first_line: int = 0       # document line where `before` starts
    scope: Scope | None = None
    extra: list = field(default_factory=list)  # [(path, text)] oldest first
    document: tuple = ()             # (text before the cursor's line, text after it, the file's key in the
                                     # memory or None): the repo memory's open document (memory.hold_document)


# ---- syntax -----------------------------------------------------------------------------------------------------
def enclosing_scope(lang: str | None, before: str, after: str) -> Scope | None:
    """Innermost function/class/struct around the cursor in before+after (a window: tree-sitter recovers from
    the cut ends), or None for plain text and top-level positions."""
    if lang is None:
        return None
    parser = parser_for(lang)
    if parser is None:
        return None
    head = before.encode("utf-8", "surrogatepass")
    src = head + after.encode("utf-8", "surrogatepass")
    tree = parser.parse(src)
    pos = len(head.rstrip())  # the last code before the cursor, not the indentation after it
    node = tree.root_node.descendant_for_byte_range(max(pos - 1, 0), pos)
    scopes = SYNTAX[lang].scopes
    while node is not None and node.type not in scopes:
        node = node.parent
    if node is None:
        return _indented_scope(before) if lang == "python" else None
    first = src[node.start_byte:].split(b"\n", 1)[0].decode("utf-8", "replace")
    return Scope(node.type, name_of(node), node.start_point[0], first)


_PY_SCOPE = re.compile(r"^([ \t]*)(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_][A-Za-z0-9_]*)")


def _indented_scope(before: str) -> Scope | None:
    """Python code being typed is often unparsable (an unfinished statement turns the function into an ERROR
    node): the nearest less-indented def/class line above the cursor is the scope then."""
    lines = before.split("\n")
    cur = lines[-1]
    indent = len(cur) - len(cur.lstrip(" \t"))
    for i in range(len(lines) - 2, -1, -1):
        l = lines[i]
        if not l.strip():
            continue
        ind = len(l) - len(l.lstrip(" \t"))
        if ind < indent:
            m = _PY_SCOPE.match(l)
            if m:
                kind = "function_definition" if m.group(2) == "def" else "class_definition"
                return Scope(kind, m.group(3), i, l)
            indent = ind
            if ind == 0:
                return None
    return None


def names_near_cursor(before: str, n_lines: int = 12) -> list[str]:
    """Identifiers on the last lines before the cursor (the word being typed excluded), nearest first."""
    tail = before.rsplit("\n", n_lines)[-n_lines:] if "\n" in before else [before]
    text = "\n".join(tail)
    m = re.search(r"[A-Za-z0-9_]+$", text)
    if m:
        text = text[:m.start()]
    seen: dict[str, None] = {}
    for w in reversed(_IDENT.findall(text)):
        if w not in seen and not keyword.iskeyword(w) and w not in _C_KEYWORDS and len(w) > 1:
            seen[w] = None
    return list(seen)


# ---- extra context across files ---------------------------------------------------------------------------------
@dataclass
class Chunk:
    uri: str
    path: str
    start: int        # first line
    text: str


class ExtraContext:
    """Ring of recently seen code chunks and an index of definitions in open files. Thread-safe: the server
    records edits on its event loop while the engine renders prompts in its worker."""

    def __init__(self, max_chunks: int = 16, chunk_lines: int = 32, max_defs: int = 12):
        self.chunk_lines = chunk_lines
        self.max_defs = max_defs
        self.chunks: deque[Chunk] = deque(maxlen=max_chunks)
        self.defs: dict[str, dict[str, str]] = {}        # uri -> name -> snippet
        self.used: OrderedDict[str, tuple[str, str]] = OrderedDict()  # name -> (uri, snippet), oldest first
        self.last_edit: dict[str, int] = {}               # uri -> line of the latest edit
        self.current_uri: str | None = None
        self._lock = threading.Lock()

    def note_chunk(self, uri: str, path: str, lines: list[str], line: int) -> None:
        """Adds the chunk of `lines` around `line` unless it mostly repeats a chunk already in the ring."""
        if not lines:
            return
        start = max(0, min(line - self.chunk_lines // 2, len(lines) - self.chunk_lines))
        if sum(map(len, lines[start:start + self.chunk_lines])) > MAX_CHUNK_CHARS:
            return  # minified or generated lines: no prompt has room for them, and a copy per keystroke costs
        text = "".join(lines[start:start + self.chunk_lines])
        if not text.strip():
            return
        with self._lock:
            for i, c in enumerate(self.chunks):
                if c.uri == uri and abs(c.start - start) < self.chunk_lines // 2:
                    if c.text == text:
                        return
                    del self.chunks[i]  # the same region, edited since: the newer text replaces it
                    break
            self.chunks.append(Chunk(uri, path, start, text))

    def note_edit(self, uri: str, path: str, lines: list[str], line: int) -> None:
        """Records an edit; the previous edit region becomes a chunk once the user moves away from it (to another
        file or far away in this one), so typing in one place does not churn the ring."""
        with self._lock:
            prev_uri, prev_line = self.current_uri, self.last_edit.get(uri)
            self.current_uri = uri
            self.last_edit[uri] = line
        if prev_uri == uri and prev_line is not None and abs(prev_line - line) > self.chunk_lines:
            self.note_chunk(uri, path, lines, prev_line)

    def index(self, uri: str, language_id: str, text: str) -> None:
        lang = language_of(language_id, uri)
        if lang is None or len(text) > INDEX_LIMIT:  # a parse of a huge (often generated) file costs seconds
            with self._lock:
                self.defs.pop(uri, None)
            return
        defs = extract_definitions(lang, text)
        with self._lock:
            self.defs[uri] = defs

    def forget(self, uri: str) -> None:
        with self._lock:
            self.defs.pop(uri, None)
            self.last_edit.pop(uri, None)

    def render(self, ctx: Context, budget_chars: int) -> list[tuple[str, str]]:
        """[(path, text)] oldest first within budget: chunks (not those the prompt window already shows), then
        definitions of names used near the cursor (not those visible in the window)."""
        if budget_chars <= 0:
            return []
        window_first = ctx.before_first_line
        window_last = ctx.line + ctx.after.count("\n")
        visible = ctx.before[-4000:] + ctx.after[:2000]
        with self._lock:
            for name in names_near_cursor(ctx.before):
                if name in self.used:
                    continue
                for uri, defs in self.defs.items():
                    snippet = defs.get(name)
                    if snippet and snippet not in visible:
                        self.used[name] = (uri, snippet)
                        break
            while len(self.used) > self.max_defs:
                self.used.popitem(last=False)
            chunks = [c for c in self.chunks
                      if not (c.uri == ctx.uri and c.start + self.chunk_lines > window_first and c.start <= window_last)]
            defs = [(uri, s) for uri, s in self.used.values()]
        out: list[tuple[str, str]] = []
        used = 0
        # the newest chunks win the budget, then the list is put back in ring order
        for c in reversed(chunks):
            if used + len(c.text) > budget_chars * 3 // 4:
                break
            out.append((c.path, c.text))
            used += len(c.text)
        out.reverse()
        for uri, s in defs:
            if used + len(s) > budget_chars:
                break
            out.append((_path_of(uri), s + "\n"))
            used += len(s) + 1
        return out


def _path_of(uri: str) -> str:
    p = uri.split("://", 1)[-1]
    return p.rsplit("/", 1)[-1] if "/" in p else p


def build_context(uri: str, language_id: str, before: str, after: str, line: int, col: int,
                  before_first_line: int, extra: ExtraContext | None, extra_chars: int,
                  retrieval=None, document: tuple = ()) -> Context:
    """The context at a cursor. The head's entries, in the order the factory trains on (fim/cursors.head):
    windows retrieved from the repository index (retrieval: completion/retrieval.py), then the ring's chunks and
    the definitions (extra), within extra_chars together."""
    line_prefix = before.rsplit("\n", 1)[-1]
    line_suffix = after.split("\n", 1)[0].rstrip("\r")
    ctx = Context(uri=uri, path=_path_of(uri), language_id=language_id, before=before, after=after,
                  line_prefix=line_prefix, line_suffix=line_suffix, line=line, col=col,
                  before_first_line=before_first_line, document=document)
    lang = language_of(language_id, uri)
    try:
        ctx.scope = enclosing_scope(lang, before[-6000:], after[:3000])
    except Exception:  # syntax is a hint; a parser failure must not cost the suggestion
        ctx.scope = None
    used = 0
    if retrieval is not None:
        try:
            for where, text in retrieval.retrieve(_file_path(uri), before, line):
                if used + len(text) > extra_chars:
                    break
                ctx.extra.append((where, text))
                used += len(text)
        except Exception:  # retrieval is a hint: a damaged or busy index must not cost the suggestion
            log.warning("retrieval failed", exc_info=True)
    if extra is not None:
        ctx.extra += extra.render(ctx, extra_chars - used)
    return ctx


def _file_path(uri: str) -> str:
    p = urlparse(uri)
    return unquote(p.path) if p.scheme == "file" else uri
