"""`ckls verify path.py::func kernel.c [--spec spec.json]`: judge a C (or CUDA) kernel against its original."""
from __future__ import annotations

import argparse
import json
import sys

from .run import load_spec_for, verify
from .sandbox import Limits
from .spec import SpecError
from ckls.usage import Parser

EPILOG = """\
The spec (JSON) declares the C function: its size symbols and arguments (kind array/scalar, dtype f32/f64/
i32/i64, shape in the sizes, role in/out/inout, views, may_alias). The C signature it implies is
    void name(int64_t size..., arg...)
with const pointers for inputs and one int64 stride per dimension after arrays that allow views. Without
--spec, <kernel>.spec.json or spec.json beside the kernel is used. --print-prototype shows the C declaration a spec implies.

Exit status: 0 PASS, 1 FAIL, 2 UNVERIFIED (e.g. CUDA without a GPU), 3 error (bad spec, reference raised).

Example:
    ckls verify ops.py::axpy axpy.c --spec axpy.json --format markdown
"""

EXIT = {"PASS": 0, "FAIL": 1, "UNVERIFIED": 2, "ERROR": 3}


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="ckls verify", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("original", help="the Python original, as path.py::function")
    p.add_argument("kernel", help="the candidate: a .c file (or .cu for CUDA)")
    p.add_argument("--spec", help="kernel contract (JSON); default <kernel>.spec.json")
    p.add_argument("--seed", type=int, help="seed for values and fuzzing (printed; default random)")
    p.add_argument("--budget", choices=["full", "ci", "quick"], default="full",
                   help="full: plan + 60 Hypothesis cases + ASan/UBSan + bench; ci: fewer cases, no bench; "
                        "quick: the fixed plan only")
    p.add_argument("--case", help="run one case (JSON, as printed in a failing report) to reproduce it")
    p.add_argument("--no-bench", action="store_true", help="skip the benchmark")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds one test case may take (default 30)")
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.add_argument("--print-prototype", action="store_true", help="print the C declaration and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        spec, spec_path = load_spec_for(args.kernel, args.spec)
    except (OSError, SpecError, ValueError) as e:
        print(f"ckls verify: {e}", file=sys.stderr)
        return EXIT["ERROR"]
    if args.print_prototype:
        print(spec.describe())
        return 0
    from .run import Budget
    budget = Budget.named(args.budget)
    if args.no_bench:
        budget.bench_s = 0.0
    case = None
    if args.case:
        case = json.loads(args.case)
        case.setdefault("tag", "repro")
    log = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    rep = verify(args.original, args.kernel, spec, spec_path=spec_path, budget=budget, seed=args.seed,
                 only_case=case, limits=Limits(request_timeout_s=args.timeout), log=log)
    out = {"text": rep.to_text, "markdown": rep.to_markdown, "json": rep.to_json}[args.format]()
    print(out)
    return EXIT.get(rep.verdict, 3)


if __name__ == "__main__":
    sys.exit(main())
