"""Which system calls does the CUDA driver make that the CUDA cell's seccomp stages refuse? One run on a GPU says.

    python bench/cuda_survey.py [--entry axpy_cuda] [--sizes 1,257,70001] [--trace]

Builds a correct kernel of the corpus with nvcc and the CUDA cell in a diagnostic build (ckls/verify/cell/
cell_trace.h), runs the contract's calls through the judge's harness and jail, and prints either each distinct call
the judge's filters refuse (survey: each is logged and answered as the filter would, and the cell goes on), or with
--trace every call from the driver's start on with its result (the filters off: the machine has no strace). Nothing
here gives a verdict. An empty survey, every call answered, is what the real judge needs.
"""
from __future__ import annotations

import argparse
import collections
import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ckls.verify import build as build_mod  # noqa: E402
from ckls.verify import cudacell, seccomp  # noqa: E402
from ckls.verify.sandbox import Crash, Limits, Worker  # noqa: E402
from ckls.verify.spec import KernelSpec  # noqa: E402
from kernels_corpus.corpus import entries  # noqa: E402


def refused(log: str) -> list[tuple[tuple[int, int, str], int]]:
    """(stage, call number, paths named) of each survey line in a cell log, with its count, in first-seen order."""
    seen: collections.Counter = collections.Counter()
    for line in log.splitlines():
        if line.startswith("ckls-cell: survey: "):
            w = line.split()  # ckls-cell: survey: stage S call NR (a0, a1, a2) ["path" ...] refused R
            seen[(int(w[3]), int(w[5]), line.split(") ", 1)[1].rsplit("refused", 1)[0].strip())] += 1
    return list(seen.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entry", default="axpy_cuda", help="a CUDA entry of tests/kernels_corpus (its ok.cu)")
    ap.add_argument("--sizes", default="1,257,70001", help="values of the contract's first size, one call each")
    ap.add_argument("--trace", action="store_true", help="log every system call from the driver's start on, with "
                    "its result (the judge's filters off: what the driver does, not what it is refused)")
    ap.add_argument("--sanitizer", metavar="TOOL", help="run the cell under compute-sanitizer --tool TOOL, as the "
                    "judge's sanitizer phase does")
    a = ap.parse_args()
    e = next((e for e in entries() if e.folder == a.entry and not e.bug), None)
    if e is None:
        print(f"no correct kernel in corpus entry {a.entry}")
        return 2
    spec = KernelSpec.load(e.spec_path)
    work = pathlib.Path(tempfile.mkdtemp(prefix="ckls-survey-"))
    try:
        builds = build_mod.build(spec, e.kernel, work)
        if not builds[0].ok:
            print("the kernel did not build:\n" + builds[0].log[-2000:])
            return 2
        exe, log = cudacell.build_cuda_cell(spec, work, survey=2 if a.trace else 1)
        if exe is None:
            print("the survey cell did not build:\n" + log[-2000:])
            return 2
        init = {"spec": spec.to_dict(), "so": builds[0].so_path, "ref": e.ref, "cell": exe, "timeout_s": 30.0,
                "guard_pad": 16, "arena_mb": 256}
        if a.sanitizer:
            tool = shutil.which("compute-sanitizer") or "/usr/local/cuda/bin/compute-sanitizer"
            init.update(guard_pad=0, settle_s=0, hold_s=0, timeout_s=120.0, cuda_sanitizer=[
                tool, "--tool", a.sanitizer, "--report-api-errors", "no", "--error-exitcode", "86"])
        first = spec.sizes[0].name
        results = []
        with Worker(init, Limits(request_timeout_s=60, address_space_mb=0), isolate=False) as w:
            for n in (int(x) for x in a.sizes.split(",")):
                case = {"sizes": {first: n}, "family": "normal", "layout": "contig", "threads": 1, "seed": n}
                try:
                    results.append((n, w.request({"op": "case", "case": case})))
                except Crash as c:  # the cell could not start (or died): its log still names what was refused
                    results.append((n, {"check": "crash", "detail": str(c)}))
                    break
            cell_log = pathlib.Path(w.tmp, "cell.log")
            text = cell_log.read_text(errors="replace") if cell_log.exists() else ""
            text += w.log_tail(100000)
        for n, r in results:
            print(f"call {first}={n}: " + ("ok" if r.get("ok") else f"{r.get('check')}: {str(r.get('detail'))[:200]}"))
        if a.trace:
            lines = [ln for ln in text.splitlines() if ln.startswith("ckls-cell: trace: ")]
            print(f"{len(lines)} calls traced; failing ones and those naming a path or socket:")
            for ln in lines:
                if '"' in ln or " = -" in ln:
                    print("  " + ln.removeprefix("ckls-cell: trace: "))
            return 0
        calls, ok = refused(text), all(r.get("ok") for _, r in results)
        print(f"{len(calls)} distinct refused calls" + (":" if calls else " (the filters let the driver work)" if ok else ""))
        for (stage, nr, what), count in calls:
            print(f"  stage {stage}: {seccomp.syscall_name(nr)} ({nr}) {what} x{count}")
        return 0 if ok and not calls else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
