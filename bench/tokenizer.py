"""Encode throughput of ckls's C tokenizer against HF `tokenizers` on the running Python's whole stdlib.

    python bench/tokenizer.py [--pre gpt-2 qwen2] [--repeats 3] [--vocab 8000]

Both sides use the same byte-level BPE (trained here by HF on every 8th stdlib file, exported to GGUF's form)
and must give identical ids. Single-thread rows encode file by file (`encode` loops on both sides; ours is
single-threaded by design); HF's `encode_batch` / `encode_batch_fast` rows use all its threads. Figures are
medians over the repeats; "cold" is ours with a fresh tokenizer (empty piece cache), first pass only.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sysconfig
import time

from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
import tokenizers

from ckls.runtime.tokenizer import TOKEN_CONTROL, TOKEN_NORMAL, Tokenizer

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>"]


def stdlib_texts() -> list[str]:
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    out = []
    for p in sorted(root.rglob("*.py")):
        if "site-packages" in p.parts or not p.is_file():
            continue
        try:
            out.append(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            pass
    return out


def train_hf(pre: str, texts: list[str], vocab: int):
    tok = tokenizers.Tokenizer(models.BPE())
    if pre == "gpt-2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_REGEX), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts[::8], trainer=trainer)
    return tok


def ours_from_hf(hf, pre: str) -> Tokenizer:
    spec = json.loads(hf.to_str())
    vocab = spec["model"]["vocab"]
    tokens = [""] * len(vocab)
    types = [TOKEN_NORMAL] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    for a in spec["added_tokens"]:
        types[a["id"]] = TOKEN_CONTROL
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    return Tokenizer(tokens, merges, pre, types)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pre", nargs="+", default=["gpt-2", "qwen2"], choices=["gpt-2", "qwen2"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=8000)
    a = ap.parse_args()

    texts = stdlib_texts()
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"corpus: {len(texts)} stdlib files, {mb:.1f} MB; tokenizers {tokenizers.__version__}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    rows = []
    for pre in a.pre:
        hf = train_hf(pre, texts, a.vocab)
        ours = ours_from_hf(hf, pre)
        fresh = ours_from_hf(hf, pre)
        cold_s, ref = timed(lambda: [fresh.encode(t) for t in texts])
        runs: dict[str, list[float]] = {"ours encode (1 thread)": [], "HF encode (1 thread)": [],
                                        "HF encode_batch (all threads)": [],
                                        "HF encode_batch_fast (all threads)": []}
        for _ in range(a.repeats):
            dt, got = timed(lambda: [ours.encode(t) for t in texts])
            assert got == ref
            runs["ours encode (1 thread)"].append(dt)
            dt, got = timed(lambda: [e.ids for e in (hf.encode(t, add_special_tokens=False) for t in texts)])
            assert got == ref, "HF and ours disagree"
            runs["HF encode (1 thread)"].append(dt)
            dt, got = timed(lambda: [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)])
            assert got == ref
            runs["HF encode_batch (all threads)"].append(dt)
            dt, got = timed(lambda: [e.ids for e in hf.encode_batch_fast(texts, add_special_tokens=False)])
            assert got == ref
            runs["HF encode_batch_fast (all threads)"].append(dt)
        n_tok = sum(len(x) for x in ref)
        base = statistics.median(runs["HF encode (1 thread)"])
        rows.append((pre, "ours encode, cold cache (1 thread)", cold_s, mb / cold_s, base / cold_s, n_tok))
        for name, ts in runs.items():
            med = statistics.median(ts)
            rows.append((pre, name, med, mb / med, base / med, n_tok))
    print(f"\n{'pre':<7} {'encoder':<38} {'seconds':>8} {'MB/s':>7} {'x HF 1-thr':>10} {'tokens':>10}")
    for pre, name, s, mbs, ratio, n_tok in rows:
        print(f"{pre:<7} {name:<38} {s:8.2f} {mbs:7.2f} {ratio:10.2f} {n_tok:10d}")
    print("\nids identical to HF on every file: yes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
