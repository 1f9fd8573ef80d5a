"""python -m ckls.train {corpus,tokenizer,encode,train,prune,export} — one stage per command.

  corpus     scan this machine's stdlib and permissively licensed packages → train/heldout.jsonl, manifest.json
  tokenizer  train the byte-level BPE on the training split → tokenizer.json
  encode     FIM-rearrange and tokenize → train.npy (+ train_starts.npy), heldout*.npy, meta.json (+ manifest tokens)
  train      pretrain or distill (run under torchrun for several processes); --init starts from a checkpoint
  prune      a trained checkpoint cut to a smaller shape by activation importance (layers, heads, FFN, embedding)
  export     checkpoint → GGUF (f32 | f16 | q8_0)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from multiprocessing import Pool
import time
from pathlib import Path


def cmd_corpus(a):
    from . import data
    site = [Path(d) for d in a.site] if a.site else None
    if a.extra_site:  # unpacked distributions from elsewhere, read like this Python's own
        site = (site if site is not None else data.default_site_dirs()) + [Path(d) for d in a.extra_site]
    data.build(a.out, stdlib=a.stdlib, site_dirs=site,
               heldout_frac=a.heldout_frac, heldout=a.heldout, workers=a.workers, max_files=a.max_files)


def cmd_tokenizer(a):
    from . import data, tokenizer

    def texts():
        got = 0
        for d in data.read_docs(Path(a.corpus) / "train.jsonl"):
            if got >= a.sample_bytes:
                return
            got += len(d["text"])
            yield d["text"]

    t0 = time.time()
    tok = tokenizer.train(texts(), vocab_size=a.vocab)
    tok.save(str(Path(a.corpus) / "tokenizer.json"))
    print(f"tokenizer: {tok.get_vocab_size()} tokens in {time.time() - t0:.1f} s")


def cmd_encode(a):
    import numpy as np

    from ckls.fim import cursors, fill

    from . import data, fim, tokenizer

    d = Path(a.corpus)
    tok = tokenizer.for_data(tokenizer.load(d / "tokenizer.json"))
    meta = {"vocab_size": tok.get_vocab_size(), "fim_rate": a.fim_rate, "spm_rate": a.spm_rate,
            "line_rate": a.line_rate, "seed": a.seed, "layout": a.layout, "retrieval": a.retrieval,
            "example_chars": a.example_chars}
    manifest = json.loads((d / "manifest.json").read_text())
    per_pkg: dict[str, int] = {}
    # heldout: plain text; heldout_fim: whole-file FIM cuts; heldout_cursor: server-shaped examples (cursors.py)
    jobs = [("train", "train", a.fim_rate, a.layout), ("heldout", "heldout", 0.0, "file"),
            ("heldout", "heldout_fim", 1.0, "file"), ("heldout", "heldout_cursor", 1.0, "cursor")]
    for split, name, rate, layout in jobs:
        t0 = time.time()
        docs = list(data.read_docs(d / f"{split}.jsonl"))
        rng = np.random.default_rng(a.seed)
        if layout == "cursor":
            by_pkg: dict[str, list[int]] = {}
            for i, x in enumerate(docs):
                by_pkg.setdefault(x["pkg"], []).append(i)
            owner, lays = [], []
            jobs_ = [([docs[i] for i in idx], (a.seed, zlib.crc32(pkg.encode())), rate, a.spm_rate, a.retrieval,
                      a.example_chars)
                     for pkg, idx in by_pkg.items()]
            with Pool(a.workers or os.cpu_count()) as pool:  # retrieval costs ~ms an example: packages in parallel
                for idx, out in zip(by_pkg.values(), pool.imap(_package_layouts, jobs_, chunksize=4)):
                    for j, lay in out:
                        owner.append(idx[j])
                        lays.append(lay)
        else:
            owner = list(range(len(docs)))
            lays = (fill.layout(x["text"], rng, rate, a.spm_rate, a.line_rate) for x in docs)
        stream, counts, mask, starts = fim.encode_layouts(lays, tok)
        np.save(d / f"{name}.npy", stream)
        if name != "heldout":  # the middles: train --middle-weight, and the held-out middle loss
            np.save(d / f"{name}_mask.npy", mask)
        if name == "train":  # where FIM examples begin: windows aligned there hold one whole (train --aligned)
            ex = [k for k, lay in enumerate(lays) if cursors.is_example(lay)] if layout == "cursor" else []
            np.save(d / "train_starts.npy", starts[ex])
        nbytes = sum(len(x["text"].encode()) for x in docs)
        meta[f"{name}_tokens"] = int(len(stream))
        meta[f"{name}_bytes"] = nbytes
        if layout == "file":  # cursor examples repeat and drop text: bytes per token would mean nothing
            meta[f"{name}_bytes_per_token"] = nbytes / max(1, len(stream))
        if name == "train" or name == "heldout":
            for i, n in zip(owner, counts):
                per_pkg[docs[i]["pkg"]] = per_pkg.get(docs[i]["pkg"], 0) + n
        print(f"encode {name}: {len(docs)} files, {len(counts)} sequences, {len(stream)} tokens, "
              f"{int(mask.sum())} middle tokens, {time.time() - t0:.1f} s", flush=True)
    for p in manifest["packages"]:
        p["tokens"] = per_pkg.get(p["name"], 0)
    manifest["tokens"] = {"train": meta["train_tokens"], "heldout": meta["heldout_tokens"]}
    manifest["tokenizer"] = {"vocab_size": meta["vocab_size"], "pre": tokenizer.PRE_NAME}
    manifest["fim"] = {k: meta[k] for k in ("fim_rate", "spm_rate", "line_rate", "seed", "layout", "retrieval",
                                            "example_chars")}
    data.write_manifest(d / "manifest.json", manifest)
    (d / "meta.json").write_text(json.dumps(meta, indent=1))


def _package_layouts(job):
    """One package's cursor layouts (a worker of cmd_encode's pool; its own rng, seeded by the package's name)."""
    import numpy as np

    from ckls.fim import cursors
    docs, seed, rate, spm_rate, retrieval, example_chars = job
    retriever = None
    if retrieval:
        from ckls.index.windows import package_retriever as retriever
    return list(cursors.package_layouts(docs, np.random.default_rng(seed), rate, spm_rate, retriever=retriever,
                                        total_chars=example_chars or cursors.TOTAL_CHARS))


def cmd_train(a):
    from . import train
    train.run(a)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Every file is written and closed and the process group destroyed; what is left is interpreter teardown,
        # where gloo's threads now and then abort the process ("terminate called without an active exception")
        # and torchrun then fails the whole run. Leave without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def cmd_prune(a):
    from . import prune
    prune.run(a)


def cmd_export(a):
    from . import export
    for t in a.type:
        out = Path(a.out.replace("{type}", t))
        export.from_checkpoint(a.ckpt, a.tokenizer, out, t, a.name)
        print(f"export: {out} ({out.stat().st_size / 1e6:.1f} MB)")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m ckls.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("--out", required=True)
    c.add_argument("--stdlib", default=None)
    c.add_argument("--site", nargs="*", default=None, help="site-packages folders (default: this Python's)")
    c.add_argument("--extra-site", nargs="*", default=None,
                   help="more folders of installed distributions (dist-info + sources), read after --site")
    c.add_argument("--heldout-frac", type=float, default=0.02)
    c.add_argument("--heldout", nargs="*", default=None, help="explicit held-out package names")
    c.add_argument("--workers", type=int, default=None)
    c.add_argument("--max-files", type=int, default=None)
    c.set_defaults(fn=cmd_corpus)
    t = sub.add_parser("tokenizer")
    t.add_argument("--corpus", required=True)
    t.add_argument("--vocab", type=int, default=16384)
    t.add_argument("--sample-bytes", type=int, default=150_000_000)
    t.set_defaults(fn=cmd_tokenizer)
    e = sub.add_parser("encode")
    e.add_argument("--corpus", required=True)
    e.add_argument("--fim-rate", type=float, default=0.5)
    e.add_argument("--spm-rate", type=float, default=0.5)
    e.add_argument("--line-rate", type=float, default=0.5)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--layout", choices=["cursor", "file"], default="cursor",
                   help="FIM examples shaped like the server's prompts at editor cursors (ckls.fim.cursors), or one "
                        "random cut of the whole file (ckls.fim.fill)")
    e.add_argument("--retrieval", action=argparse.BooleanOptionalAction, default=True,
                   help="cursor examples carry the windows of the package's other files that the server's index "
                        "would retrieve there (ckls.index.windows)")
    e.add_argument("--example-chars", type=int, default=None,
                   help="characters of a cursor example, head + prefix + suffix (default: what fits a 1,024-token "
                        "window, 3,800; 5,700 holds the server's whole prompt, for 2,048-token windows)")
    e.add_argument("--workers", type=int, default=0, help="processes for the cursor layouts (default: every core)")
    e.set_defaults(fn=cmd_encode)
    from .options import add_args
    r = sub.add_parser("train")
    add_args(r)
    r.set_defaults(fn=cmd_train)
    pr = sub.add_parser("prune", help="structured pruning by activation importance (then train --init --teacher)")
    from .options import add_prune_args
    add_prune_args(pr)
    pr.set_defaults(fn=cmd_prune)
    x = sub.add_parser("export")
    x.add_argument("--ckpt", required=True)
    x.add_argument("--tokenizer", required=True)
    x.add_argument("--out", required=True, help="path; {type} is replaced by the type")
    x.add_argument("--type", nargs="+", default=["f16"], choices=["f32", "f16", "q8_0"])
    x.add_argument("--name", default="ckls-code")
    x.set_defaults(fn=cmd_export)
    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
