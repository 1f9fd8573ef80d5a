"""The workspace as training data: which files, their content hashes, held-out files and token samples.

Files: what git tracks plus untracked files it does not ignore (`git ls-files --cached --others
--exclude-standard`); outside a git repository, a walk that skips hidden folders. Dropped: vendored or build
folders, generated files (names such as *_pb2.py, or a "generated / do not edit" banner), minified ones (long
lines), binary or non-UTF-8, tiny and huge files (ckls.fim.corpus.load_file decides the last four), then exact and
near duplicates (ckls.fim.dedup), keeping the first path in sorted order.

Samples: each file is cut at line starts into pieces of about `seq_len` tokens' worth of characters; each piece
becomes, with probability fim_rate, a fill-in-the-middle sample (ckls.fim.fill's layouts, PSM or SPM, with the
model's own FIM token ids) and otherwise a plain causal one; the pieces are packed into one stream cut into
windows of seq_len + 1 tokens (inputs and next-token targets).
"""
from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

from ckls.fim import corpus, cursors, dedup, fill, layout
from ckls.fim.corpus import candidate_paths, excluded  # noqa: F401  (candidate_paths: the tuner's file list)
from ckls.fim.tokens import EOT, FILE_SEP, FIM_MID, FIM_PRE, FIM_SUF

@dataclass
class SourceFile:
    path: str    # relative to the workspace root, '/'-separated
    sha1: str    # of the raw bytes: a changed file gets a new hash
    text: str


@dataclass
class Scan:
    files: list[SourceFile] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, why: str) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1


def scan(root: str | os.PathLike, max_files: int = 20000, pace=None) -> Scan:
    """Reads, filters and dedupes the workspace's source files (sorted by path). pace(), when given, is called
    before each file (the tuner gives way to the user there)."""
    root = os.fspath(root)
    out = Scan()
    kept: list[SourceFile] = []
    sigs, seen = [], set()
    for rel in candidate_paths(root):
        if pace is not None:
            pace()
        why = excluded(rel)
        full = os.path.join(root, rel)
        if why is None and (os.path.islink(full) or not os.path.isfile(full)):
            why = "not a regular file"
        if why is None and len(kept) >= max_files:
            why = "over max_files"
        if why is not None:
            out.drop(why)
            continue
        text, sig, why = corpus.read_source(full)
        if text is None:
            out.drop(why)
            continue
        key = dedup.exact_key(text)
        if key in seen:
            out.drop("exact duplicate")
            continue
        seen.add(key)
        kept.append(SourceFile(rel, hashlib.sha1(text.encode("utf-8")).hexdigest(), text))
        sigs.append(sig)
    keep = dedup.near_duplicates(np.stack(sigs)) if sigs else np.zeros(0, bool)
    for f, k in zip(kept, keep):
        if k:
            out.files.append(f)
        else:
            out.drop("near duplicate")
    return out


def choose_heldout(paths: list[str], frac: float = 0.05, most: int = 8, previous: list[str] | None = None) -> list[str]:
    """A few held-out files, stable across rounds: the previous choice where those files still exist, topped up in
    a fixed hash order. None when there are fewer than 4 files (too little to spare any)."""
    if len(paths) < 4:
        return []
    want = max(1, min(most, round(frac * len(paths))))
    have = set(paths)
    out = [p for p in (previous or []) if p in have][:want]
    for p in sorted(paths, key=lambda p: zlib.crc32(p.encode())):
        if len(out) >= want:
            break
        if p not in out:
            out.append(p)
    return sorted(out)


def plan_round(files: list[SourceFile], trained: dict[str, str], heldout: list[str], replay: float,
               rng: np.random.Generator) -> tuple[list[SourceFile], list[SourceFile]]:
    """(fresh, replayed): files new or changed since `trained` (path -> sha1 of the content trained on), and a
    random sample of the unchanged ones, `replay` times as many as the fresh (at least one when any exist) so
    a round on a small edit does not forget the rest of the repository. Held-out files are in neither."""
    held = set(heldout)
    train = [f for f in files if f.path not in held]
    fresh = [f for f in train if trained.get(f.path) != f.sha1]
    old = [f for f in train if trained.get(f.path) == f.sha1]
    if not fresh or not old:
        return fresh, []
    n = min(len(old), max(1, int(round(replay * len(fresh)))))
    pick = sorted(rng.choice(len(old), n, replace=False))
    return fresh, [old[i] for i in pick]


def pieces(text: str, max_chars: int) -> list[str]:
    """Cuts a file at line starts into pieces of at most max_chars (a longer single line is cut anywhere)."""
    out, cur, n = [], [], 0
    for line in text.splitlines(keepends=True):
        while len(line) > max_chars:
            if cur:
                out.append("".join(cur))
                cur, n = [], 0
            out.append(line[:max_chars])
            line = line[max_chars:]
        if n + len(line) > max_chars and cur:
            out.append("".join(cur))
            cur, n = [], 0
        cur.append(line)
        n += len(line)
    if cur:
        out.append("".join(cur))
    return [p for p in out if p.strip()]


class SampleMaker:
    """Token windows from texts with a runtime Tokenizer (ckls.runtime.tokenizer); FIM only when the model has
    FIM tokens."""

    def __init__(self, tok, seq_len: int, fim_rate: float = 0.9, spm_rate: float = 0.5, line_rate: float = 0.5,
                 chars_per_token: float = 3.0, pace=None):
        self.tok = tok
        self.pace = pace  # called before each file's work, as in scan()
        self.seq_len = int(seq_len)
        ids = {EOT: tok.eos_id, FIM_PRE: tok.fim_pre_id, FIM_SUF: tok.fim_suf_id, FIM_MID: tok.fim_mid_id}
        if ids[EOT] is None:
            raise ValueError("the model's tokenizer has no end-of-text token")
        self.has_fim = all(v is not None for v in ids.values())
        self.special = dict(ids, **{FILE_SEP: getattr(tok, "fim_sep_id", None)})
        self.fim_rate = fim_rate if self.has_fim else 0.0
        self.spm_rate, self.line_rate = spm_rate, line_rate
        self.max_chars = max(64, int(seq_len * chars_per_token))

    def encode(self, texts: list[str], seed: int) -> np.ndarray:
        """The packed token stream of the texts' pieces, each laid out as FIM or plain (seeded)."""
        rng = np.random.default_rng(seed)
        chunks = []
        for text in texts:
            if self.pace is not None:
                self.pace()
            for piece in pieces(text, self.max_chars):
                for p in fill.layout(piece, rng, self.fim_rate, self.spm_rate, self.line_rate):
                    if isinstance(p, str):
                        chunks.append(self.tok.encode(p))
                    elif p[0] == "mid":
                        chunks.append(self.tok.encode(p[1]))
                    else:
                        chunks.append([self.special[p[0]]])
        flat = [t for c in chunks for t in c]
        return np.asarray(flat, dtype=np.int32)

    def windows(self, stream: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(tokens, targets) pairs of seq_len tokens each (the last may be shorter), targets = next tokens."""
        n = self.seq_len
        out = []
        for s in range(0, max(len(stream) - 1, 0), n):
            w = stream[s:s + n + 1]
            if len(w) < 2:
                break
            toks, tgts = w[:-1].copy(), w[1:].copy()
            out.append((toks, tgts))
        return out

    def cursor_windows(self, files: list[tuple[str, str]], seed: int, fim_rate: float = 0.5,
                       spm_rate: float = 0.8, example_chars: int = cursors.CHARS_PER_EXAMPLE,
                       max_examples: int = 8, context_chars: int = cursors.TOTAL_CHARS,
                       middle_only: bool = False, retrieve=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Windows shaped like the server's requests (ckls.fim.cursors, the base model's own layout): every file
        as plain text, packed; and for a share fim_rate of the files, examples with the cursor inside a line, at a
        block or line start, with a head of definitions from the repository's other files, each example its own
        window (dropped when longer than seq_len): one per example_chars characters of a file, at most
        max_examples, each at most context_chars of context. middle_only: the examples alone, their loss on the
        middle and its end-of-text only (what a completion is scored on). `files` are (path, text). Plain windows
        only without FIM tokens. retrieve(path, text before the cursor, k): the windows the server's index would
        put at the head there (index.windows.package_retriever over the repository's files), when it serves them."""
        rng = np.random.default_rng(seed)
        # a shorter seq_len gets shorter contexts rather than only the examples that happen to be short
        context_chars = min(context_chars, int(self.seq_len * cursors.CONTEXT_CHARS_PER_TOKEN))
        docs = [{"path": p, "text": t, "lang": "python" if p.endswith(".py") else "other"} for p, t in files]
        if not self.has_fim or self.special[FILE_SEP] is None:
            fim_rate = 0.0
        plain, examples = [], []
        for _, lay in cursors.package_layouts(docs, rng, fim_rate, spm_rate, example_chars, max_examples,
                                              context_chars, pace=self.pace,
                                              retriever=(lambda _docs: retrieve) if retrieve is not None else None):
            ids = self._encode_layout(lay)
            if cursors.is_example(lay):
                if 2 <= len(ids) <= self.seq_len + 1:
                    examples.append(np.asarray(ids, dtype=np.int32))
            else:
                plain.extend(ids)
        out = [(w[:-1].copy(), w[1:].copy()) for w in examples]
        if middle_only and self.has_fim:
            for toks, tgts in out:
                tgts[: int(np.flatnonzero(toks == self.special[FIM_MID])[-1])] = -1
            return out
        return out + self.windows(np.asarray(plain, dtype=np.int32))

    def _encode_layout(self, lay: list) -> list[int]:
        """Token ids of one layout (ckls.fim.layout's pieces, rendered as the server renders its prompt)."""
        return layout.render(lay, self.tok.encode, self.special.__getitem__, self.tok.decode,
                             pretokenize=self.tok.pretokenize)[0]
