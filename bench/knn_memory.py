"""What the hidden-state memory (ckls.runtime.knn_memory, kNN-LM) does to next-token prediction, before any
completion is run: on one project, the memory holds the files that are NOT held out (ckls.fim.split, fraction
0.2, seed 0), read left to right; on the held-out files' tokens (every 4th position after the 32nd, the first 768
tokens of each file, up to --positions) it reports the model's mean negative log-likelihood and top-1 accuracy,
then the same for the mixture p = (1 - lam) p_model + lam q_knn over a grid of k, temperature and lam, with the
top-1 changes the mixture makes (right where the model was wrong / wrong where it was right).

This is the tool to pick the memory's parameters on a development project — never on the projects the quality
table reports. Line exact match through the server's pipeline is measured with
`python bench/eval_projects.py ... -- --retrieval false --hidden-memory k=64,temperature=100,lam=0.25,fim=24`.

    python bench/knn_memory.py --project attrs==25.4.0 [--positions 1500] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from eval_projects import fetch  # noqa: E402


def positions(model, mem, tree: str, held: list[str], most: int) -> list[tuple]:
    """(model probabilities of its top 50, their ids, neighbour distances, neighbour values, true next token)"""
    rows = []
    for rel in held:
        with open(os.path.join(tree, rel), encoding="utf-8", errors="replace") as f:
            ids = model.tokenizer.encode(f.read())[:768]
        if len(ids) < 100:
            continue
        h = model.eval_hidden(ids)
        model.forget()
        lg = model.eval(ids, logits_all=True)
        model.forget()
        for i in range(32, len(ids) - 1, 4):
            x = lg[i].astype(np.float64)
            p = np.exp(x - x.max())
            p /= p.sum()
            top = np.argsort(-p)[:50]
            d, v = mem.neighbours(h[i])
            rows.append((p[top], top, p[ids[i + 1]], d, v, ids[i + 1]))
        if len(rows) >= most:
            break
    return rows[:most]


def score(rows, k: int, temp: float, lam: float) -> tuple[float, float, int, int]:
    nll = acc = good = bad = 0
    for pt, top, p_y, d, v, y in rows:
        d, v = d[:k], v[:k]
        w = np.exp(-(d - d[0]) / temp)
        w /= w.sum()
        q_y = float(w[v == y].sum())
        nll -= np.log((1 - lam) * p_y + lam * q_y)
        s = dict(zip(top.tolist(), ((1 - lam) * pt).tolist()))
        for t, ww in zip(v.tolist(), w.tolist()):
            s[t] = s.get(t, 0.0) + lam * ww
        pred = max(s, key=s.get)
        acc += pred == y
        if pred != top[0]:
            good += pred == y
            bad += top[0] == y
    return nll / len(rows), acc / len(rows), good, bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", default="attrs==25.4.0", help="NAME==VERSION (a development project)")
    ap.add_argument("--model", default=os.path.join(ROOT, "ckls", "models", "default.gguf"))
    ap.add_argument("--cache", default=os.path.join(ROOT, ".work", "eval"))
    ap.add_argument("--positions", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    from ckls.fim.split import source_files, split_files
    from ckls.runtime.knn_memory import HiddenMemory
    from ckls.runtime.model import load_model

    name, _, version = a.project.partition("==")
    tree = fetch(name, version, a.cache)
    train, held = split_files(tree, 0.2, 0, source_files(tree))
    model = load_model(a.model, n_ctx=1024, n_threads=a.threads)
    mem = HiddenMemory(model, k=64)
    for rel in train:
        with open(os.path.join(tree, rel), encoding="utf-8", errors="replace") as f:
            mem.add_file(rel, f.read())
    rows = positions(model, mem, tree, held, a.positions)
    base_nll = -np.mean([np.log(r[2]) for r in rows])
    base_acc = np.mean([r[1][0] == r[5] for r in rows])
    print(f"{a.project}: memory {len(train)} files, {mem.n_tokens:,} tokens; {len(rows)} held-out positions")
    print(f"model alone: NLL {base_nll:.3f} nats/token, top-1 {base_acc:.3f}\n")
    print("| k | temperature | lam | NLL | top-1 | right flips | wrong flips |\n|---|---|---|---|---|---|---|")
    for k in (8, 32, 64):
        for temp in (50, 100, 200):
            for lam in (0.1, 0.25, 0.4):
                nll, acc, good, bad = score(rows, k, temp, lam)
                print(f"| {k} | {temp} | {lam} | {nll:.3f} | {acc:.3f} | {good} | {bad} |")
    model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
