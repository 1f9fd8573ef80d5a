"""ckls.verify: the independent judge of generated kernels (build, sandboxed differential fuzzing,
sanitizers, benchmark, report). It never imports ckls.kernels: the judge must not depend on the defendant."""
from .report import ERROR, FAIL, PASS, UNVERIFIED, Report
from .spec import Arg, KernelSpec, Size, SpecError

__all__ = ["verify", "KernelSpec", "Arg", "Size", "SpecError", "Report", "PASS", "FAIL", "UNVERIFIED", "ERROR"]


def verify(*args, **kwargs) -> Report:
    from .run import verify as _verify
    return _verify(*args, **kwargs)
