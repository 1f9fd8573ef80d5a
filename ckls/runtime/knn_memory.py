"""A repository memory of hidden states, mixed into the next-token distribution (kNN-LM, Khandelwal et al. 2020;
for code, FT2Ra, arXiv 2404.01554): for every token of the repository's files, the model's hidden state after the
final norm (the key) and the token that followed it (the value). At a generation step the k keys nearest to the
step's hidden state vote for their values with weights softmax(-distance / temperature), and
p = (1 - lam) p_model + lam q_knn.

Unlike the n-gram memory (ckls.runtime.ngram_memory), which needs the exact preceding tokens, this one matches
contexts the model represents alike. Keys come from the files read left to right in overlapping windows (each
kept token has at least `window - stride` tokens before it, or all of its file's).

Measured in bench/knn_memory.py (bench/RESULTS.md says what it bought). Exact search over float32 keys: memory is
n_embd * 4 bytes per stored token."""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np


class HiddenMemory:
    needs_hidden = True  # Model.generate passes each step's hidden state to mix() (and does not speculate)

    def __init__(self, model, k: int = 32, temperature: float = 10.0, lam: float = 0.25, window: int = 768,
                 stride: int = 512, capacity_tokens: int = 1 << 18):
        if not 0 < stride <= window:
            raise ValueError(f"stride {stride} must be in 1..window ({window})")
        self.model, self.tokenizer = model, model.tokenizer
        self.k, self.temperature, self.lam = int(k), float(temperature), float(lam)
        self.window, self.stride, self.capacity = int(window), int(stride), int(capacity_tokens)
        self._files: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._keys = self._norms = self._vals = None  # the files' keys stacked, built on first use after a change
        self.steps = self.spoke = 0

    @property
    def native(self):  # the engine hands `memory.native` to Model.generate
        return self

    @property
    def n_tokens(self) -> int:
        return sum(len(v) for _, v in self._files.values())

    def add_file(self, path: str, text: str) -> int:
        """Evaluates the file on the model (the caller owns the model's cache: it is overwritten) and replaces
        path's keys; returns the number stored."""
        ids = self.tokenizer.encode(text.replace("\r\n", "\n")) if text else []
        if len(ids) < 2:
            return 0
        keys, vals = [], []
        start = 0
        while True:
            chunk = ids[start:start + self.window]
            h = self.model.eval_hidden(chunk, pos0=0)
            keep = 0 if start == 0 else self.window - self.stride
            keys.append(h[keep:len(chunk) - 1])
            vals.append(np.asarray(chunk[keep + 1:], dtype=np.int32))
            if start + len(chunk) >= len(ids):
                break
            start += self.stride
        self.model.forget()
        k, v = np.concatenate(keys), np.concatenate(vals)
        with self._lock:
            self._files[path] = (k, v)
            self._keys = None
        return len(v)

    def add_windows(self, key: str, windows) -> int:
        """Stores the hidden states of (tokens, targets) windows at the positions whose target is not -1 (e.g.
        the middles of cursor-shaped examples, ckls.tune.dataset.SampleMaker.cursor_windows with middle_only),
        under key; returns the number stored."""
        keys, vals = [], []
        for toks, tgts in windows:
            sel = np.asarray(tgts) >= 0
            if not sel.any():
                continue
            h = self.model.eval_hidden(toks, pos0=0)
            keys.append(h[sel])
            vals.append(np.asarray(tgts, dtype=np.int32)[sel])
        self.model.forget()
        if not keys:
            return 0
        with self._lock:
            self._files[key] = (np.concatenate(keys), np.concatenate(vals))
            self._keys = None
        return sum(len(v) for v in vals)

    def remove_file(self, path: str) -> bool:
        with self._lock:
            self._keys = None
            return self._files.pop(path, None) is not None

    def _stacked(self):
        if self._keys is None:
            ks = [k for k, _ in self._files.values()]
            vs = [v for _, v in self._files.values()]
            keys = np.concatenate(ks)[-self.capacity:] if ks else np.zeros((0, 1), np.float32)
            self._vals = np.concatenate(vs)[-self.capacity:] if vs else np.zeros(0, np.int32)
            self._norms = np.einsum("ij,ij->i", keys, keys)
            self._keys = keys
        return self._keys, self._norms, self._vals

    def neighbours(self, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest keys' squared distances (ascending) and values."""
        with self._lock:
            keys, norms, vals = self._stacked()
        if len(vals) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int32)
        d = norms - 2.0 * (keys @ hidden) + float(hidden @ hidden)
        k = min(self.k, len(d))
        idx = np.argpartition(d, k - 1)[:k]
        idx = idx[np.argsort(d[idx])]
        return np.maximum(d[idx], 0.0), vals[idx]

    def distribution(self, hidden: np.ndarray, n_vocab: int) -> np.ndarray | None:
        d, v = self.neighbours(hidden)
        if len(v) == 0:
            return None
        w = np.exp(-(d - d[0]) / self.temperature)
        q = np.zeros(n_vocab, dtype=np.float64)
        np.add.at(q, v, w)
        return q / q.sum()

    def mix(self, logits: np.ndarray, context: Sequence[int] = (), hidden: np.ndarray | None = None) -> float:
        """Mixes the memory's prediction for `hidden` into float32 logits in place (as log-probabilities; tokens
        the logits exclude, -inf, stay excluded). Returns the weight the memory got (0: nothing stored)."""
        self.steps += 1
        if hidden is None or self.lam <= 0:
            return 0.0
        q = self.distribution(hidden, len(logits))
        if q is None:
            return 0.0
        ok = np.isfinite(logits)
        q[~ok] = 0.0
        if q.sum() <= 0:
            return 0.0
        q /= q.sum()
        x = logits.astype(np.float64)
        p = np.exp(x - x[ok].max())
        p /= p.sum()
        mixed = (1.0 - self.lam) * p + self.lam * q
        with np.errstate(divide="ignore"):
            logits[:] = np.where(ok, np.log(mixed), -np.inf).astype(np.float32)
        self.spoke += 1
        return self.lam
