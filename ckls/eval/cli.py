"""`ckls eval completion --repo DIR [--model M]`: completion quality on a source tree's held-out files."""
from __future__ import annotations

import argparse
import os
import sys
import time


def add_parser(sub) -> None:
    from ckls.config import COMPLETION, add_cli_args

    e = sub.add_parser("eval", help="measure completion quality on a source tree")
    esub = e.add_subparsers(dest="eval_cmd", metavar="WHAT", required=True)
    c = esub.add_parser("completion", help="line and block completion on held-out files: exact match, edit "
                        "similarity, latency", description=(
                            "Samples cursor positions in the held-out files of --repo (or --files) and completes "
                            "them through the server's own context, prompt, engine and post-processing."))
    c.add_argument("--repo", required=True, help="source tree to measure on")
    c.add_argument("--files", nargs="+", default=None,
                   help="files to sample from (paths relative to --repo); default: the held-out split")
    c.add_argument("--held-out", type=float, default=0.2, metavar="FRACTION",
                   help="share of files held out by path hash (default 0.2); the tuner uses the same split")
    c.add_argument("--split-seed", type=int, default=0, help="seed of the held-out split (default 0)")
    c.add_argument("--samples", type=int, default=200, help="line-completion samples (default 200)")
    c.add_argument("--blocks", type=int, default=None, help="block-completion samples (default samples / 4)")
    c.add_argument("--seed", type=int, default=0, help="seed of the cursor positions (default 0)")
    c.add_argument("--json", default=None, metavar="OUT", help="write the summary and every sample here")
    c.add_argument("--adapter", default=None, metavar="LORA.gguf",
                   help="serve this LoRA adapter on top of the model (e.g. one `ckls tune` trained)")
    c.add_argument("--memory", action="store_true",
                   help="mix the repository memory (ckls.completion.memory) built from the files not sampled "
                        "(the held-out split's other side) into generation, as the server does with "
                        "memory_enabled (which also turns this on)")
    c.add_argument("--hidden-memory", default=None, metavar="K=V,...",
                   help="with --memory: a hidden-state memory (kNN-LM, ckls.runtime.knn_memory) instead of the "
                        "n-gram one, e.g. k=32,temperature=10,lam=0.25")
    c.add_argument("--no-memory-document", dest="memory_document", action="store_false",
                   help="with the memory: leave the sampled document itself out of it (the server holds the open "
                        "document, without the cursor's line, beside the workspace's files)")
    c.add_argument("--retrieval-shift", type=int, default=None, metavar="LINES",
                   help="with --retrieval true: show each retrieved hit from this many lines into it (what follows "
                        "the code that matched; default: the server's, ckls.index.text.SHOW_SHIFT; 0: the hit itself)")
    c.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    add_cli_args(c, COMPLETION)  # --model, --threads, --max-tokens, --n-ctx, budgets: the server's own settings
    c.set_defaults(func=cmd_eval_completion)


def cmd_eval_completion(args) -> int:
    from ckls.config import Settings, from_cli
    from ckls.completion.engine import NoModel
    from ckls.eval.report import misses, summarize, table, write_json
    from ckls.eval.runner import progress_line, run_samples
    from ckls.eval.samples import make_samples
    from ckls.fim.split import source_files, split_files

    if not os.path.isdir(args.repo):
        print(f"ckls: --repo {args.repo} is not a directory", file=sys.stderr)
        return 2
    given = from_cli(args)
    # quality must not depend on how busy the machine is: the server's latency cap only if asked for
    given.setdefault("latency_ms", 60000)
    settings = Settings().merged(given, strict=True)[0]
    all_files = source_files(args.repo)
    if args.files:
        missing = [f for f in args.files if not os.path.isfile(os.path.join(args.repo, f))]
        if missing:
            print(f"ckls: not in --repo: {', '.join(missing)}", file=sys.stderr)
            return 2
        files = sorted(args.files)
    else:
        files = split_files(args.repo, args.held_out, args.split_seed, all_files)[1]
    if not files:
        print(f"ckls: no source files in {args.repo}", file=sys.stderr)
        return 2
    n_block = args.blocks if args.blocks is not None else args.samples // 4
    samples = make_samples(args.repo, files, args.samples, n_block, args.seed, settings.max_lines)
    if args.adapter and not os.path.isfile(args.adapter):
        print(f"ckls: --adapter {args.adapter} does not exist", file=sys.stderr)
        return 2
    if not samples:
        print("ckls: the files hold no line to complete", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        use_memory = args.memory or settings.memory_enabled or args.hidden_memory is not None
        hidden = None
        if args.hidden_memory is not None:
            try:
                hidden = {k.strip(): float(v) for k, v in (kv.split("=", 1) for kv in args.hidden_memory.split(",") if kv)}
            except ValueError:
                print(f"ckls: --hidden-memory {args.hidden_memory!r}: expected K=V pairs, e.g. k=32,lam=0.25",
                      file=sys.stderr)
                return 2
            known = {"k", "temperature", "lam", "window", "stride", "capacity_tokens", "fim", "plain", "fim_chars"}
            if set(hidden) - known:
                print(f"ckls: --hidden-memory: unknown {', '.join(sorted(set(hidden) - known))} "
                      f"(known: {', '.join(sorted(known))})", file=sys.stderr)
                return 2
            hidden = {k: v if k in ("temperature", "lam") else int(v) for k, v in hidden.items()}
        records = run_samples(samples, args.repo, settings, all_files,
                              progress=None if args.quiet else progress_line(), adapter=args.adapter,
                              memory_files=[f for f in all_files if f not in set(files)] if use_memory else None,
                              hidden_memory=hidden, memory_document=args.memory_document,
                              retrieval_shift=args.retrieval_shift)
    except NoModel as exc:
        print(f"ckls: {exc}", file=sys.stderr)
        return 1
    wall = time.monotonic() - t0
    rows = summarize(records)
    with_adapter = (f" + adapter {args.adapter}" if args.adapter else "") + (" + repo memory" if use_memory else "")
    print(f"model {settings.resolved_model_path}{with_adapter}\nrepo {os.path.abspath(args.repo)}: {len(files)} files sampled "
          f"of {len(all_files)}; seed {args.seed}; threads {settings.n_threads}; {wall:.0f} s")
    print(table(rows))
    miss = misses(records)
    if any(miss.values()):
        print("line misses: " + ", ".join(f"{k} {v}" for k, v in miss.items() if v))
    if args.json:
        meta = {"model": settings.resolved_model_path, "repo": os.path.abspath(args.repo), "files": files,
                "n_source_files": len(all_files), "held_out": None if args.files else args.held_out,
                "split_seed": args.split_seed, "seed": args.seed, "wall_s": round(wall, 1),
                "adapter": args.adapter, "memory": use_memory,
                "memory_document": use_memory and hidden is None and args.memory_document, "hidden_memory": hidden,
                "settings": settings.as_dict(), "line_misses": miss}
        write_json(args.json, meta, rows, records)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ckls")
    add_parser(ap.add_subparsers(dest="cmd"))
    args = ap.parse_args(argv)
    return args.func(args)
