"""LoRA training speed, ckls vs PyTorch CPU doing the identical step, in one run.

One step = forward over a sequence of --seq tokens with the adapter, mean cross-entropy on next-token targets,
backward into every LoRA A/B gradient (the optimizer step, a few ms on either side, is left out). Same model,
rank, alpha, adapted matrices, sequence and thread count on both sides:
  * ckls: the GGUF weights as they are in the file (the shipped default model is Q8_0), our C forward/backward;
  * torch: the same weights dequantized to float32 (torch has no Q8_0 matmul), an eager llama/qwen2 module with
    LoRA (scaled_dot_product_attention, the frozen weights without requires_grad), torch.set_num_threads(T).
Tokens/s of each are medians over repeats, the two interleaved so drift on a shared machine hits both alike; the
paired ratio is the median of each repeat's ckls/torch (a step of each, back to back), the figure to read when the
machine's speed wanders between repeats.

    python bench/tune.py                          # shipped default model, the tuner's rank 8 and seq 1024, 2 threads
    python bench/tune.py --model m.gguf --rank 8 --seq 128 --threads 1 --repeats 5
    CKLS_TRAIN_PROFILE=1 python bench/tune.py     # and ckls's time per kind of op, each step, on stderr
    python bench/tune.py --threads 1 --yields 40  # and how fast a running step gives the cores back
    python bench/tune.py --mode integer           # one forward mode only (default: both, exact and integer)
    CKLS_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/tune.py
                                                  # both sides on AVX2 alone, as on a CPU without AVX-512

--yields N: N steps, each cancelled at a random moment inside it (as a keystroke does while the tuner trains);
prints the delay from raising the flag to the step's return, p50 / p95 / max (the tuner's bar: within 100 ms).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # run from a checkout too

TARGET_SUFFIX = {"attn_q": "attn_q.weight", "attn_k": "attn_k.weight", "attn_v": "attn_v.weight",
                 "attn_output": "attn_output.weight", "ffn_gate": "ffn_gate.weight", "ffn_up": "ffn_up.weight",
                 "ffn_down": "ffn_down.weight"}


def torch_model(path: str, hp: dict, arch: str, adapter, targets):
    """Frozen float32 weights from the GGUF file plus the adapter's A/B (copies, requiring grad)."""
    import gguf
    import torch

    r = gguf.GGUFReader(path)
    w = {}
    for t in r.tensors:
        x = gguf.quants.dequantize(t.data, t.tensor_type)
        w[t.name] = torch.tensor(np.asarray(x, dtype=np.float32).reshape(tuple(int(s) for s in reversed(t.shape))))
    lora = {}
    for layer in range(hp["n_layer"]):
        for tg in targets:
            lora[(layer, tg)] = (torch.tensor(adapter.a(layer, tg).copy(), requires_grad=True),
                                 torch.tensor(adapter.b(layer, tg).copy(), requires_grad=True))
    return w, lora


def torch_step(w, lora, hp, arch, scale, tokens, targets):
    import torch
    import torch.nn.functional as F

    n = len(tokens)
    nh, nkv, hd, n_rot = hp["n_head"], hp["n_head_kv"], hp["n_embd"] // hp["n_head"], hp["n_rot"]
    half = n_rot // 2
    theta = torch.arange(n, dtype=torch.float32)[:, None] * hp["rope_base"] ** (
        -2.0 * torch.arange(half, dtype=torch.float32) / n_rot)
    cos, sin = torch.cos(theta)[:, None, :], torch.sin(theta)[:, None, :]

    def rope(x):
        if arch == "qwen2":
            a, b, rest = x[..., :half], x[..., half:n_rot], x[..., n_rot:]
            return torch.cat([a * cos - b * sin, a * sin + b * cos, rest], -1)
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        rot = torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)
        return torch.cat([rot, x[..., n_rot:]], -1)

    def lin(layer, tg, x):
        y = x @ w[f"blk.{layer}.{TARGET_SUFFIX[tg]}"].T
        if (layer, tg) in lora:
            A, B = lora[(layer, tg)]
            y = y + scale * ((x @ A.T) @ B.T)
        return y

    def norm(x, wt):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + hp["rms_eps"]) * wt

    x = w["token_embd.weight"][torch.as_tensor(tokens)]
    for i in range(hp["n_layer"]):
        p = f"blk.{i}."
        h = norm(x, w[p + "attn_norm.weight"])
        q, k, v = lin(i, "attn_q", h), lin(i, "attn_k", h), lin(i, "attn_v", h)
        if p + "attn_q.bias" in w:
            q, k, v = q + w[p + "attn_q.bias"], k + w[p + "attn_k.bias"], v + w[p + "attn_v.bias"]
        q, k, v = rope(q.view(n, nh, hd)), rope(k.view(n, nkv, hd)), v.view(n, nkv, hd)
        k, v = k.repeat_interleave(nh // nkv, 1), v.repeat_interleave(nh // nkv, 1)
        att = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=True)
        x = x + lin(i, "attn_output", att.transpose(0, 1).reshape(n, nh * hd))
        h = norm(x, w[p + "ffn_norm.weight"])
        x = x + lin(i, "ffn_down", F.silu(lin(i, "ffn_gate", h)) * lin(i, "ffn_up", h))
    x = norm(x, w["output_norm.weight"])
    logits = x @ w.get("output.weight", w["token_embd.weight"]).T
    loss = F.cross_entropy(logits, torch.as_tensor(targets, dtype=torch.long), ignore_index=-1)
    loss.backward()
    for A, B in lora.values():
        A.grad = B.grad = None
    return float(loss.detach())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="GGUF model (default: the shipped default model)")
    from ckls.tune.loop import TuneOptions

    tuner = TuneOptions()  # the defaults a tuning round runs with
    ap.add_argument("--rank", type=int, default=tuner.rank)
    ap.add_argument("--alpha", type=float, default=tuner.alpha)
    ap.add_argument("--targets", default="attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down")
    ap.add_argument("--seq", type=int, default=tuner.seq_len)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--yields", type=int, default=0, help="also measure cancel latency over this many steps")
    ap.add_argument("--mode", choices=("both", "exact", "integer"), default="both",
                    help="ckls's forward: exact (f32 over dequantized weights), integer (the server's arithmetic; "
                         "ckls_train_set_exact) or both, each beside the same torch step")
    a = ap.parse_args(argv)

    import torch

    from ckls.runtime.lora import LoraAdapter, LoraTrainer
    from ckls.runtime.model import Model

    path = a.model or str(pathlib.Path(__file__).resolve().parent.parent / "ckls" / "models" / "default.gguf")
    targets = [t for t in a.targets.split(",") if t]
    torch.set_num_threads(a.threads)
    model = Model(path, n_ctx=a.seq, n_threads=a.threads, load_tokenizer=False)
    hp = model.hparams
    adapter = LoraAdapter.for_model(model, rank=a.rank, alpha=a.alpha, targets=targets, seed=1)
    rng = np.random.default_rng(0)
    for layer, tg in adapter.names():  # B non-zero, as after some training (PEFT starts it at zero)
        adapter.b(layer, tg)[:] = rng.standard_normal(adapter.b(layer, tg).shape).astype(np.float32) * 0.01
    modes = {"exact": True, "integer": False} if a.mode == "both" else {a.mode: a.mode == "exact"}
    trainers = {name: LoraTrainer(model, adapter, max_tokens=a.seq, exact=exact) for name, exact in modes.items()}
    tokens = rng.integers(0, model.n_vocab - 16, size=a.seq)
    targets_ids = np.append(tokens[1:], -1)
    w, lora = torch_model(path, hp, model.arch, adapter, targets)

    ours = {name: [] for name in trainers}
    theirs, losses = [], {}
    for rep in range(a.repeats + 1):  # the first round warms everything up and is not counted
        for name, trainer in trainers.items():
            t0 = time.perf_counter()
            losses[name] = trainer.step(tokens, targets_ids)
            dt = time.perf_counter() - t0
            adapter.zero_grad()
            if rep:
                ours[name].append(a.seq / dt)
        t1 = time.perf_counter()
        losses["torch"] = torch_step(w, lora, hp, model.arch, adapter.scale, tokens, targets_ids)
        if rep:
            theirs.append(a.seq / (time.perf_counter() - t1))
    t = statistics.median(theirs)
    load = os.getloadavg()
    wtypes = sorted({model.file.tensors[n].type for n in model.file.tensors if n.endswith("attn_q.weight")})
    print(f"model {pathlib.Path(path).name} ({model.arch}, {hp['n_layer']} layers, d {hp['n_embd']}, "
          f"weight types {wtypes}; torch: float32 dequantized), rank {a.rank}, {len(targets)} targets, "
          f"seq {a.seq}, threads {a.threads}, repeats {a.repeats}, ISA {isa_name()}, "
          f"torch {torch.backends.cpu.get_cpu_capability()}")  # ATEN_CPU_CAPABILITY=avx2 (and MKL/oneDNN's) pins it
    print("loss " + "  ".join(f"{k} {v:.4f}" for k, v in losses.items()))
    for name, xs in ours.items():
        c = statistics.median(xs)
        print(f"ckls {name:8s} {c:8.1f} tok/s  (step {a.seq / c * 1000:.0f} ms; runs {', '.join(f'{x:.0f}' for x in xs)})")
    print(f"torch         {t:8.1f} tok/s  (step {a.seq / t * 1000:.0f} ms; runs {', '.join(f'{x:.0f}' for x in theirs)})")
    for name, xs in ours.items():
        paired = sorted(x / y for x, y in zip(xs, theirs))
        print(f"{name}: paired ratio ckls/torch {statistics.median(paired):.2f}x (repeats {paired[0]:.2f}–"
              f"{paired[-1]:.2f}x)")
    print(f"(load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores)")
    first = next(iter(trainers.values()))
    if a.yields:
        print(yield_delays(first, tokens, targets_ids, a.seq / statistics.median(next(iter(ours.values()))),
                           a.yields))
    for trainer in trainers.values():
        trainer.close()
    model.close()
    return 0


def isa_name() -> str:
    from ckls.native import ffi, lib
    return ffi.string(lib.ckls_isa_name(lib.ckls_isa_active())).decode()


def yield_delays(trainer, tokens, targets_ids, step_s: float, n: int) -> str:
    """Cancel n running steps at uniformly random moments; the flag-to-return delays."""
    import random
    import threading

    from ckls.runtime import Cancelled, CancelFlag

    rng = random.Random(0)
    delays, finished = [], 0
    for _ in range(n):
        flag, done = CancelFlag(), [None]

        def run():
            try:
                trainer.step(tokens, targets_ids, cancel=flag)
            except Cancelled:
                pass
            done[0] = time.perf_counter()

        th = threading.Thread(target=run)
        th.start()
        time.sleep(rng.uniform(0.0, 0.95 * step_s))
        t0 = time.perf_counter()
        flag.set()
        th.join()
        trainer.adapter.zero_grad()
        if done[0] < t0:
            finished += 1  # the step ended before the flag went up
            continue
        delays.append((done[0] - t0) * 1e3)
    delays.sort()
    if not delays:
        return "yield: every step finished before its flag"
    q = lambda f: delays[min(len(delays) - 1, int(f * len(delays)))]
    return (f"yield after cancel: p50 {q(0.5):.1f} ms, p95 {q(0.95):.1f} ms, max {delays[-1]:.1f} ms "
            f"({len(delays)} cancelled mid-step, {finished} finished first)")


if __name__ == "__main__":
    sys.exit(main())
