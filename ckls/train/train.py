"""Pretraining (and distillation) loop; the same command runs on 1 process or N under torchrun.

Data is one packed token stream (fim.py) held in device memory; step s draws its global batch of windows from
a generator seeded by (seed, s), and rank r of W takes rows [(m·W + r)·micro, …) of micro-step m. So the
global batch does not depend on W, a run resumes exactly from its checkpoint, and 1 and N processes see the
same data. With a time budget, the number of steps is fixed once the first steps after compilation have been
timed, and stored in the checkpoint.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import distill
from .model import Config, Llama
from .options import add_args  # noqa: F401  (re-exported for callers)

MEASURE_FROM, MEASURE_TO = 5, 25  # steps after start used to time a step (compilation happens before)


def setup():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def load_tokens(path, device):
    arr = np.load(path, mmap_mode="r")
    return torch.from_numpy(np.asarray(arr, dtype=np.int32)).to(device)


def windows(data, offsets, T):
    idx = offsets[:, None] + torch.arange(T + 1, device=data.device)[None, :]
    w = data[idx].long()
    return w[:, :-1], w[:, 1:]


def step_rows(seed: int, step: int, n_tokens: int, T: int, rows: int, starts: np.ndarray | None = None,
              aligned: float = 0.0) -> np.ndarray:
    """Window offsets of one step's global batch: uniform over the stream, or with probability `aligned` the
    start of a sequence (`starts`), so a FIM example begins the window with its whole context."""
    g = np.random.default_rng([seed, step])
    rows_ = g.integers(0, n_tokens - T - 1, rows)
    if starts is not None and len(starts) and aligned > 0:
        pick = g.random(rows) < aligned
        s = starts[g.integers(0, len(starts), rows)]
        rows_ = np.where(pick & (s < n_tokens - T - 1), s, rows_)
    return rows_


def middle_mask(data_dir: Path, a, distilling: bool, n_tokens: int, device):
    """The training stream's FIM-middle mask (uint8, on the device) when --middle-weight asks for it, else None."""
    if a.middle_weight == 1.0:
        return None
    f = data_dir / "train_mask.npy"
    if a.middle_weight <= 0 or distilling or not f.exists():
        raise SystemExit(f"--middle-weight {a.middle_weight}: " + (
            "must be > 0" if a.middle_weight <= 0 else "not with --teacher" if distilling else
            f"{f} is missing (encode the corpus again: `ckls.train encode` writes it)"))
    m = np.load(f, mmap_mode="r")
    if len(m) != n_tokens:
        raise SystemExit(f"{f} holds {len(m)} tokens, train.npy {n_tokens}: encode the corpus again")
    return torch.from_numpy(np.array(m, dtype=np.uint8)).to(device)


def lr_at(step: int, a, max_steps: int | None) -> float:
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    if not max_steps:
        return a.lr
    prog = min(1.0, (step - a.warmup) / max(1, max_steps - a.warmup))
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))


def autocast(device, bf16: bool):
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model, data, T, micro, max_tokens, rank, world, device, bf16, mask=None):
    """Mean next-token loss (nats) over non-overlapping windows of the stream, split across processes.

    With `mask` (same length as data), only targets where the mask is 1 count.
    """
    model.eval()
    n_win = min((len(data) - 1) // T, max(1, max_tokens // T))
    total = torch.zeros(2, dtype=torch.float64, device=device)
    mine = list(range(rank, n_win, world))
    for i in range(0, len(mine), micro):
        offs = torch.tensor(mine[i:i + micro], device=device) * T
        x, y = windows(data, offs, T)
        with autocast(device, bf16):
            logits = model(x)
        nll = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
        if mask is not None:
            m = windows(mask, offs, T)[1].flatten().to(nll.dtype)
            nll = nll * m
            total[1] += m.sum().double()
        else:
            total[1] += y.numel()
        total[0] += nll.sum().double()
    if world > 1:
        dist.all_reduce(total)
    model.train()
    return (total[0] / total[1]).item(), int(total[1].item())


def save(path: Path, model, opt, step, max_steps, args, elapsed):
    tmp = path.with_suffix(".tmp")
    torch.save({"cfg": model.cfg.to_dict(), "model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "max_steps": max_steps, "elapsed": elapsed,
                "args": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}},
               tmp)
    tmp.replace(path)


def init_from(model, path) -> None:
    """Loads a checkpoint's weights (train.py's or prune's format) into `model`, whose shape must be the same
    (the context length may differ: RoPE tables are not saved)."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    have, want = dict(ck["cfg"]), model.cfg.to_dict()
    have.pop("max_seq", None)
    want.pop("max_seq", None)
    if have != want:
        flags = (f"--dim {have['dim']} --layers {have['n_layers']} --heads {have['n_heads']} --kv-heads "
                 f"{have['n_kv_heads']} --ffn {have['ffn_dim']}" + ("" if have["tie_embeddings"] else " --untied"))
        raise SystemExit(f"--init {path} holds a model of another shape ({flags}; vocabulary {have['vocab_size']})")
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ck["model"].items()})


def run(a) -> dict:
    rank, world, device = setup()
    if a.threads:
        torch.set_num_threads(a.threads)
    master = rank == 0
    out = Path(a.out)
    if master:
        out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(a.data)
    meta = json.loads((data_dir / "meta.json").read_text())
    if a.batch % (a.micro * world):
        raise SystemExit(f"--batch {a.batch} must be a multiple of --micro {a.micro} × {world} processes")
    accum = a.batch // (a.micro * world)
    cfg = Config(vocab_size=meta["vocab_size"], dim=a.dim, n_layers=a.layers, n_heads=a.heads,
                 n_kv_heads=a.kv_heads or a.heads, ffn_dim=a.ffn, max_seq=a.seq, tie_embeddings=not a.untied)
    torch.manual_seed(a.seed)
    model = Llama(cfg).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")
    step, max_steps, elapsed0 = 0, a.max_steps, 0.0
    ckpt = out / "ckpt.pt"
    if ckpt.exists():
        ck = torch.load(ckpt, map_location=device, weights_only=False)
        if ck["cfg"] != cfg.to_dict():
            raise SystemExit(f"{ckpt} holds a different model: {ck['cfg']}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, elapsed0 = ck["step"], ck["elapsed"]
        max_steps = a.max_steps if a.max_steps is not None else ck["max_steps"]
        if master:
            print(f"resumed from {ckpt} at step {step}", flush=True)
    elif getattr(a, "init", None):
        init_from(model, a.init)
        if master:
            print(f"initialized from {a.init}", flush=True)
    teacher = distill.load_teacher(a.teacher, device, cfg.vocab_size) if a.teacher else None
    train_data = load_tokens(data_dir / "train.npy", device)
    mask = middle_mask(data_dir, a, teacher is not None, len(train_data), device)
    starts = np.load(data_dir / "train_starts.npy") if a.aligned and (data_dir / "train_starts.npy").exists() \
        else None
    fwd = torch.compile(model) if a.compile else model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        fwd = DDP(fwd, device_ids=[device.index] if device.type == "cuda" else None)
    if master:
        print(json.dumps({"params": model.n_params(), "cfg": cfg.to_dict(), "world": world, "accum": accum,
                          "train_tokens": len(train_data), "tokens_per_step": a.batch * a.seq}), flush=True)
    log = open(out / "log.jsonl", "a") if master else None
    t0 = time.time()
    t_measure = None
    start = step
    tok_per_step = a.batch * a.seq
    last_t, last_step = time.time(), step
    losses = []
    stop_at = start + a.stop_after if a.stop_after else None
    while (max_steps is None or step < max_steps) and step != stop_at:
        if a.time_budget and max_steps is None and step == start + MEASURE_FROM:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_measure = time.time()
        if a.time_budget and max_steps is None and step == start + MEASURE_TO:
            if device.type == "cuda":
                torch.cuda.synchronize()
            per = (time.time() - t_measure) / (MEASURE_TO - MEASURE_FROM)
            left = a.time_budget - elapsed0 - (time.time() - t0)
            n = torch.tensor([step + max(0, int(left / per))], device=device)
            if world > 1:
                dist.broadcast(n, 0)
            max_steps = int(n.item())
            if master:
                print(f"step time {per * 1e3:.1f} ms → {max_steps} steps in the budget", flush=True)
            continue
        lr = lr_at(step, a, max_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        rows = step_rows(a.seed, step, len(train_data), a.seq, a.batch, starts, a.aligned)
        loss_sum = torch.zeros((), device=device)
        for m in range(accum):
            r0 = (m * world + rank) * a.micro
            offs = torch.from_numpy(rows[r0:r0 + a.micro]).to(device)
            x, y = windows(train_data, offs, a.seq)
            w = None if mask is None else 1.0 + (a.middle_weight - 1.0) * windows(mask, offs, a.seq)[1]
            sync = contextlib.nullcontext() if (world == 1 or m == accum - 1) else fwd.no_sync()
            with sync:
                with autocast(device, a.bf16):
                    if teacher is None:
                        loss = fwd(x, y, w)
                    else:
                        with torch.no_grad():
                            t_logits = teacher(x)
                        loss = distill.kd_loss(fwd(x), t_logits, y, a.kd_alpha, a.kd_temp)
                (loss / accum).backward()
            loss_sum += loss.detach() / accum
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip) if a.clip else torch.zeros(())
        opt.step()
        opt.zero_grad(set_to_none=True)
        if world > 1:
            dist.all_reduce(loss_sum, op=dist.ReduceOp.AVG)
        step += 1
        losses.append(loss_sum)
        if step % a.log_every == 0 or step == max_steps:
            vals = torch.stack(losses).tolist()
            losses.clear()
            now = time.time()
            rec = {"step": step, "loss": vals[-1], "loss_mean": sum(vals) / len(vals), "lr": lr,
                   "gnorm": float(gnorm), "tok_s": (step - last_step) * tok_per_step / (now - last_t),
                   "elapsed": elapsed0 + now - t0, "world": world, "run_step": step - start}
            last_t, last_step = now, step
            if master:
                print(json.dumps(rec), flush=True)
                log.write(json.dumps(rec) + "\n")
                log.flush()
        if a.ckpt_every and step % a.ckpt_every == 0 and master:
            save(ckpt, model, opt, step, max_steps, a, elapsed0 + time.time() - t0)
    train_time = elapsed0 + time.time() - t0
    if master:
        save(ckpt, model, opt, step, max_steps, a, train_time)
    if stop_at is not None and step == stop_at and step != max_steps:
        if master:
            print(f"stopped at step {step}; rerun the same command to resume", flush=True)
            log.close()
        if world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return {"steps": step, "stopped": True}
    metrics = {"steps": step, "train_seconds": train_time, "tokens_seen": step * tok_per_step,
               "tokens_per_second": (step - start) * tok_per_step / max(1e-9, time.time() - t0),
               "params": model.n_params(), "world": world}
    for name in ("heldout", "heldout_fim", "heldout_cursor"):
        f = data_dir / f"{name}.npy"
        if f.exists():
            hd = load_tokens(f, device)
            if len(hd) > a.seq + 1:
                loss, n = evaluate(model, hd, a.seq, a.micro, a.eval_tokens, rank, world, device, a.bf16)
                metrics[f"{name}_loss"] = loss
                metrics[f"{name}_tokens"] = n
                bpt = meta.get(f"{name}_bytes_per_token")
                if bpt:
                    metrics[f"{name}_bits_per_byte"] = loss / math.log(2) / bpt
                mf = data_dir / f"{name}_mask.npy"
                if mf.exists():
                    loss, n = evaluate(model, hd, a.seq, a.micro, a.eval_tokens, rank, world, device, a.bf16,
                                       mask=load_tokens(mf, device))
                    metrics[f"{name}_middle_loss"] = loss
                    metrics[f"{name}_middle_tokens"] = n
    if master:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
        print(json.dumps(metrics), flush=True)
        log.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics
