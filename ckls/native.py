"""The compiled core (native/, through cffi): `ffi`, `lib`, and `check()` which turns status codes into errors."""
from __future__ import annotations

try:
    from ckls._native import ffi, lib  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - only when the package was not built
    raise ImportError(
        "ckls's native core is not built: install the package (pip install .) or run "
        "`python native/build.py inplace` in a source checkout"
    ) from exc


class NativeError(RuntimeError):
    """A failure reported by the C core (status code plus its message)."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{message} (status {code})")
        self.code = code


def last_error() -> str:
    return ffi.string(lib.ckls_last_error()).decode("utf-8", "replace")


def check(status: int) -> int:
    """Returns a non-negative status unchanged; raises NativeError for a negative one."""
    if status < 0:
        raise NativeError(status, last_error())
    return status


def _isa_from_env() -> None:
    """CKLS_ISA=scalar|avx2|avxvnni|avx512|avx512vnni|amx|neon|neondot pins the kernels (reproducing a report, comparing ISAs on
    one machine); unset, the best ISA this CPU runs is used."""
    import os

    want = os.environ.get("CKLS_ISA", "").strip().lower()
    if not want:
        return
    names = {ffi.string(lib.ckls_isa_name(i)).decode(): i for i in range(lib.CKLS_ISA_COUNT)}
    if want not in names:
        raise RuntimeError(f"CKLS_ISA={want!r}: not one of {', '.join(names)}")
    if lib.ckls_set_isa(names[want]) < 0:
        raise RuntimeError(f"CKLS_ISA={want!r}: {last_error()}")


_isa_from_env()
