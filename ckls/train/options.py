"""Command-line options of `ckls.train train` and `prune` (kept free of torch so --help and other stages need none)."""
from __future__ import annotations

import argparse


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="folder with train.npy, heldout.npy, meta.json")
    p.add_argument("--out", required=True, help="folder for ckpt.pt, log.jsonl, metrics.json")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=None)
    p.add_argument("--ffn", type=int, default=1408)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--untied", action="store_true", help="separate output matrix")
    p.add_argument("--batch", type=int, default=128, help="global sequences per step")
    p.add_argument("--micro", type=int, default=64, help="sequences per process per micro-step")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-frac", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--time-budget", type=float, default=None, help="seconds of training")
    p.add_argument("--stop-after", type=int, default=None,
                   help="leave after this many steps of this invocation (checkpointed; rerun to resume)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--aligned", type=float, default=0.0,
                   help="share of training windows that start at a sequence start (train_starts.npy)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    p.add_argument("--ckpt-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-tokens", type=int, default=4_000_000)
    p.add_argument("--init", default=None, help="checkpoint whose weights the model starts from (e.g. one written "
                   "by `prune`; its shape must be the one given here). A run resuming from --out ignores it")
    p.add_argument("--middle-weight", type=float, default=1.0,
                   help="loss weight of the FIM middle tokens (train_mask.npy: what a cursor example asks the model "
                   "to fill) against 1 for every other token; the loss stays a weighted mean (default 1: plain)")
    p.add_argument("--teacher", default=None, help="checkpoint to distill from")
    p.add_argument("--kd-alpha", type=float, default=0.5)
    p.add_argument("--kd-temp", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process")


def add_prune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="the trained checkpoint to prune (train.py's ckpt.pt)")
    p.add_argument("--out", required=True, help="the pruned checkpoint (start `train --init` from it)")
    p.add_argument("--data", default=None, help="folder with train.npy / heldout.npy and meta.json (calibration)")
    p.add_argument("--layers", type=int, default=None, help="layers to keep (default: all)")
    p.add_argument("--dim", type=int, default=None, help="embedding channels to keep; must be heads × head size "
                   "(default: all, or heads × head size when --heads is given)")
    p.add_argument("--heads", type=int, default=None, help="attention heads to keep (default: all)")
    p.add_argument("--ffn", type=int, default=None, help="FFN channels to keep (default: all)")
    p.add_argument("--split", default="train", choices=["train", "heldout"], help="calibration stream")
    p.add_argument("--windows", type=int, default=512, help="calibration windows (default 512)")
    p.add_argument("--seq", type=int, default=None, help="tokens per window (default: the model's context)")
    p.add_argument("--micro", type=int, default=16, help="windows per forward pass")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--order", choices=["activation", "random"], default="activation",
                   help="what to keep: the most important by activations, or at random (a baseline)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads")
