"""Structured pruning of a trained checkpoint to a smaller shape, by activation-based importance (NVIDIA's
Minitron recipe: Muralidharan et al. 2024, "Compact Language Models via Pruning and Knowledge Distillation").

One forward pass over calibration windows of the training stream measures, without gradients:

* embedding channels: mean |RMSNorm output| per channel, summed over every norm (attn_norm, ffn_norm, output_norm);
* attention heads: mean L2 norm of each head's attention output (the input of attn_output), per layer; with
  grouped-query attention a key/value head and the query heads that share it are kept or dropped together;
* FFN channels: mean |silu(gate)·up| per channel (the input of ffn_down), per layer;
* layers: block importance, mean (1 − cos(x_in, x_out)) of the residual stream across the block (how much the
  block changes it; ShortGPT's measure, cheaper than Minitron's one-layer-removed perplexity).

`prune` then keeps the most important of each (in their original order: with nothing removed the checkpoint is
the same) and slices every matrix accordingly. Heads are not cut inside, so the head size stays: the target
dimension must be (target heads) × (the teacher's head size). The result is a checkpoint in train.py's format
({"cfg", "model"}) that `ckls.train train --init` starts from (distilled from the unpruned model with
`--teacher`) and `ckls.train export` writes as GGUF.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ckls import atomic

from .model import Config, Llama

AXES = ("emb", "heads", "ffn", "layers")


@torch.no_grad()
def importance(model: Llama, batches) -> dict[str, torch.Tensor]:
    """Activation importance over `batches` (iterables of token tensors [B, T]): emb [dim], heads [layers, heads],
    ffn [layers, ffn], layers [layers] (float64, on the CPU). The model is put in eval mode."""
    cfg = model.cfg
    model.eval()
    dev = next(model.parameters()).device
    acc = {"emb": torch.zeros(cfg.dim, dtype=torch.float64, device=dev),
           "heads": torch.zeros(cfg.n_layers, cfg.n_heads, dtype=torch.float64, device=dev),
           "ffn": torch.zeros(cfg.n_layers, cfg.ffn_dim, dtype=torch.float64, device=dev),
           "layers": torch.zeros(cfg.n_layers, dtype=torch.float64, device=dev)}
    hooks = []

    def norm_hook(_m, _inp, out):
        acc["emb"].add_(out.detach().abs().double().sum((0, 1)))

    for m in [model.output_norm] + [n for b in model.blk for n in (b.attn_norm, b.ffn_norm)]:
        hooks.append(m.register_forward_hook(norm_hook))
    for i, b in enumerate(model.blk):
        def heads_hook(_m, inp, i=i):
            x = inp[0].detach().double()
            acc["heads"][i].add_(x.unflatten(-1, (cfg.n_heads, cfg.head_dim)).norm(dim=-1).sum((0, 1)))

        def ffn_hook(_m, inp, i=i):
            acc["ffn"][i].add_(inp[0].detach().abs().double().sum((0, 1)))

        def block_hook(_m, inp, out, i=i):
            cos = F.cosine_similarity(inp[0].detach().double(), out.detach().double(), dim=-1)
            acc["layers"][i].add_((1 - cos).sum())

        hooks += [b.attn_output.register_forward_pre_hook(heads_hook), b.ffn_down.register_forward_pre_hook(ffn_hook),
                  b.register_forward_hook(block_hook)]
    n_tok = 0
    try:
        for x in batches:
            model.logits(x.to(dev))
            n_tok += x.numel()
    finally:
        for h in hooks:
            h.remove()
    if not n_tok:
        raise ValueError("no calibration tokens")
    return {k: (v / n_tok).cpu() for k, v in acc.items()}


def random_importance(cfg: Config, seed: int) -> dict[str, torch.Tensor]:
    """Random scores of importance()'s shapes: the baseline that pruning by activations must beat."""
    g = torch.Generator().manual_seed(seed)
    return {"emb": torch.rand(cfg.dim, generator=g, dtype=torch.float64),
            "heads": torch.rand(cfg.n_layers, cfg.n_heads, generator=g, dtype=torch.float64),
            "ffn": torch.rand(cfg.n_layers, cfg.ffn_dim, generator=g, dtype=torch.float64),
            "layers": torch.rand(cfg.n_layers, generator=g, dtype=torch.float64)}


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest scores, in ascending index order (ties: the lower index)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return torch.tensor(sorted(order[:k]), dtype=torch.long)


def target_config(cfg: Config, layers: int | None = None, dim: int | None = None, heads: int | None = None,
                  ffn: int | None = None) -> Config:
    """The pruned shape (None keeps the axis); ValueError names what cannot be reached by pruning."""
    layers = cfg.n_layers if layers is None else layers
    heads = cfg.n_heads if heads is None else heads
    ffn = cfg.ffn_dim if ffn is None else ffn
    rep = cfg.n_heads // cfg.n_kv_heads
    if dim is None:
        dim = cfg.dim if heads == cfg.n_heads else heads * cfg.head_dim
    for name, v, top in (("--layers", layers, cfg.n_layers), ("--dim", dim, cfg.dim), ("--heads", heads, cfg.n_heads),
                         ("--ffn", ffn, cfg.ffn_dim)):
        if not 1 <= v <= top:
            raise ValueError(f"{name} {v}: pruning keeps between 1 and the model's {top}")
    if heads % rep:
        raise ValueError(f"--heads {heads}: the model shares each key/value head among {rep} query heads, so the "
                         f"head count must be a multiple of {rep}")
    if dim != heads * cfg.head_dim:
        raise ValueError(f"--dim {dim} with --heads {heads}: heads keep their size {cfg.head_dim}, so the dimension "
                         f"must be heads × {cfg.head_dim} = {heads * cfg.head_dim}")
    return Config(vocab_size=cfg.vocab_size, dim=dim, n_layers=layers, n_heads=heads, n_kv_heads=heads // rep,
                  ffn_dim=ffn, max_seq=cfg.max_seq, rope_theta=cfg.rope_theta, norm_eps=cfg.norm_eps,
                  tie_embeddings=cfg.tie_embeddings)


@torch.no_grad()
def prune(state: dict, cfg: Config, imp: dict[str, torch.Tensor], new: Config) -> tuple[dict, dict]:
    """Slices a state dict of `cfg`'s shape to `new`'s (from target_config), keeping the most important layers,
    heads (or key/value groups), FFN and embedding channels. Returns (state dict, what was kept)."""
    state = {k[len("_orig_mod."):] if k.startswith("_orig_mod.") else k: v for k, v in state.items()}
    hd, rep = cfg.head_dim, cfg.n_heads // cfg.n_kv_heads
    emb = _top(imp["emb"], new.dim)
    layers = _top(imp["layers"], new.n_layers)
    out = {"token_embd.weight": state["token_embd.weight"][:, emb].clone(),
           "output_norm.weight": state["output_norm.weight"][emb].clone()}
    if "output.weight" in state:
        out["output.weight"] = state["output.weight"][:, emb].clone()
    kept = {"layers": layers.tolist(), "emb": emb.tolist(), "heads": [], "ffn": []}
    for j, i in enumerate(layers.tolist()):
        p, q = f"blk.{i}.", f"blk.{j}."
        groups = _top(imp["heads"][i].view(cfg.n_kv_heads, rep).sum(1), new.n_kv_heads)  # kv heads kept
        qh = (groups[:, None] * rep + torch.arange(rep)[None, :]).flatten()  # their query heads, in order
        qrows = (qh[:, None] * hd + torch.arange(hd)[None, :]).flatten()
        kvrows = (groups[:, None] * hd + torch.arange(hd)[None, :]).flatten()
        ff = _top(imp["ffn"][i], new.ffn_dim)
        kept["heads"].append(qh.tolist())
        kept["ffn"].append(ff.tolist())
        out[q + "attn_norm.weight"] = state[p + "attn_norm.weight"][emb].clone()
        out[q + "ffn_norm.weight"] = state[p + "ffn_norm.weight"][emb].clone()
        out[q + "attn_q.weight"] = state[p + "attn_q.weight"][qrows][:, emb].clone()
        out[q + "attn_k.weight"] = state[p + "attn_k.weight"][kvrows][:, emb].clone()
        out[q + "attn_v.weight"] = state[p + "attn_v.weight"][kvrows][:, emb].clone()
        out[q + "attn_output.weight"] = state[p + "attn_output.weight"][emb][:, qrows].clone()
        out[q + "ffn_gate.weight"] = state[p + "ffn_gate.weight"][ff][:, emb].clone()
        out[q + "ffn_up.weight"] = state[p + "ffn_up.weight"][ff][:, emb].clone()
        out[q + "ffn_down.weight"] = state[p + "ffn_down.weight"][emb][:, ff].clone()
    return out, kept


def calibration_batches(tokens: np.ndarray, windows: int, seq: int, micro: int, seed: int):
    """`windows` windows of `seq` tokens at seeded random offsets of the stream, `micro` at a time."""
    if len(tokens) <= seq:
        raise ValueError(f"the calibration stream has {len(tokens)} tokens, fewer than one window of {seq}")
    offs = np.random.default_rng(seed).integers(0, len(tokens) - seq, windows)
    for i in range(0, windows, micro):
        yield torch.from_numpy(np.stack([np.asarray(tokens[o:o + seq], dtype=np.int64) for o in offs[i:i + micro]]))


def save(path: str | Path, cfg: Config, state: dict, info: dict) -> None:
    """A checkpoint as train.py writes them ({"cfg", "model", ...}), atomically."""
    atomic.write_with(path, lambda tmp: torch.save({"cfg": cfg.to_dict(), "model": state, "step": 0,
                                                    "pruned": info}, tmp), suffix=".pt.tmp", make_folder=True)


def run(a) -> dict:
    """`python -m ckls.train prune`: the checkpoint --ckpt pruned to the shape given, written to --out."""
    t0 = time.time()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ck = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    cfg = Config(**ck["cfg"])
    try:
        new = target_config(cfg, a.layers, a.dim, a.heads, a.ffn)
    except ValueError as exc:
        raise SystemExit(f"prune: {exc}") from None
    model = Llama(cfg)
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ck["model"].items()})
    if a.order == "random":
        imp = random_importance(cfg, a.seed)
    else:
        if not a.data:
            raise SystemExit("prune: --data is needed for the calibration windows (or --order random)")
        meta = json.loads((Path(a.data) / "meta.json").read_text())
        if meta["vocab_size"] != cfg.vocab_size:
            raise SystemExit(f"prune: the data's vocabulary {meta['vocab_size']} ≠ the model's {cfg.vocab_size}")
        tokens = np.load(Path(a.data) / f"{a.split}.npy", mmap_mode="r")
        seq = min(a.seq or cfg.max_seq, cfg.max_seq)
        model.to(device)
        imp = importance(model, calibration_batches(tokens, a.windows, seq, a.micro, a.seed))
        model.cpu()
    state, kept = prune(model.state_dict(), cfg, imp, new)
    info = {"from": str(a.ckpt), "from_cfg": cfg.to_dict(), "order": a.order, "kept": kept,
            "calibration": None if a.order == "random" else {"split": a.split, "windows": a.windows, "seed": a.seed}}
    save(a.out, new, state, info)
    n_before = model.n_params()
    n_after = sum(v.numel() for v in state.values())
    summary = {"out": str(a.out), "params_before": n_before, "params_after": n_after, "cfg": new.to_dict(),
               "layers_kept": kept["layers"], "seconds": round(time.time() - t0, 2)}
    print(json.dumps(summary), flush=True)
    return summary
