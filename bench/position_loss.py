"""Does a model keep its way past the positions it was trained on? Mean next-token loss per 256-position bin over
long source files, read whole from position 0.

    python bench/position_loss.py [--model M] [--ctx 2048] [--files 12] [--src .work/eval/src]

The files: the first --files Python sources of at least --ctx tokens under --src (by default the unpacked
projects of bench/eval_projects.py, which the training corpus does not hold). A model trained on 1,024-token
windows whose loss climbs past bin 1,024 should not be given longer prompts (the engine caps its prompts at the
GGUF's context_length).
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ckls.runtime.model import Model  # noqa: E402

BIN = 256


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ckls/models/default.gguf")
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--files", type=int, default=12)
    ap.add_argument("--src", default=".work/eval/src")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    m = Model(a.model, n_ctx=a.ctx, n_threads=a.threads)
    paths = sorted(glob.glob(os.path.join(a.src, "**", "*.py"), recursive=True))
    nbin = a.ctx // BIN
    loss, count, used = np.zeros(nbin), np.zeros(nbin), 0
    for path in paths:
        with open(path, errors="replace") as f:
            ids = m.tokenizer.encode(f.read())
        if len(ids) < a.ctx:
            continue
        ids = ids[:a.ctx]
        m.forget()
        lg = m.eval(ids[:-1], logits_all=True).astype(np.float64)
        lg -= lg.max(1, keepdims=True)
        nll = np.log(np.exp(lg).sum(1)) - lg[np.arange(len(ids) - 1), ids[1:]]
        for b in range(nbin):
            part = nll[b * BIN:(b + 1) * BIN]
            loss[b] += part.sum()
            count[b] += len(part)
        used += 1
        if used >= a.files:
            break
    if not used:
        print(f"no Python file of {a.ctx} tokens under {a.src}")
        return 2
    print(f"{a.model}: trained context {m.hparams['n_ctx_train']}, rope base {m.hparams['rope_base']:g}, "
          f"{used} files of {a.ctx} tokens")
    print(" ".join(f"{b * BIN}-{(b + 1) * BIN}: {loss[b] / count[b]:.3f}" for b in range(nbin)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
