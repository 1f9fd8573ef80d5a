"""How often `ckls complete` answers with something at random cursors of real files, and how long it takes.

    python bench/complete_cli.py [--cursors 100] [--seed 0] [--files json/decoder.py,...]

Cursors are drawn inside non-blank lines of standard-library files (real code the default model was not scored
on here), and the rest of the cursor's line is removed, as when the user is typing it (with the rest already
there, the right suggestion is often nothing); each goes through `ckls complete`'s own path (ckls.completion.oneshot.complete_file with the CLI's
settings: the full prompt, no latency cap unless given), one engine shared so the model loads once. Prints the
share of non-empty suggestions and the latency p50/p95.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import sysconfig
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ckls.completion.engine import Engine  # noqa: E402
from ckls.completion.oneshot import complete_file  # noqa: E402
from ckls.config import Settings  # noqa: E402

FILES = ["json/decoder.py", "csv.py", "textwrap.py", "shlex.py", "fractions.py", "statistics.py",
         "argparse.py", "configparser.py"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cursors", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--files", help="comma-separated paths under the standard library")
    a = ap.parse_args()
    stdlib = sysconfig.get_paths()["stdlib"]
    files = [os.path.join(stdlib, f) for f in (a.files.split(",") if a.files else FILES)]
    rng = random.Random(a.seed)
    settings = Settings().merged({"latency_ms": 60000}, strict=True)[0]   # as `ckls complete` sets it
    engine = Engine(settings)
    engine.load(settings).result()
    empty, times = 0, []
    typed = os.path.join(tempfile.mkdtemp(prefix="ckls-complete-"), "typed.py")
    try:
        for _ in range(a.cursors):
            path = rng.choice(files)
            lines = open(path, encoding="utf-8").read().split("\n")
            i = rng.choice([k for k, ln in enumerate(lines) if ln.strip()])
            col = rng.randint(len(lines[i]) - len(lines[i].lstrip()), len(lines[i]) - 1)
            lines[i] = lines[i][:col]
            with open(typed, "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
            t0 = time.perf_counter()
            res = complete_file(typed, i, col, settings, engine=engine)
            times.append((time.perf_counter() - t0) * 1e3)
            empty += not res.text.strip()
    finally:
        engine.close()
    n = len(times)
    q = statistics.quantiles(times, n=20)
    print(f"{n} cursors: non-empty {n - empty}/{n} ({(n - empty) / n:.0%}); latency p50 {statistics.median(times):.0f} "
          f"ms, p95 {q[18]:.0f} ms; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
