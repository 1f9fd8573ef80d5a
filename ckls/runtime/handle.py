"""The one way a Python object owns a C object of the native core (a model, an adapter, a trainer)."""
from __future__ import annotations

from ckls.native import ffi


class Owner:
    """Owns the C object at `_ptr` (None or NULL: none): close() frees it once with the class's `_free`
    (`staticmethod(lib.ckls_..._free)`), and garbage collection closes what is still open."""

    _ptr = None
    _free = None

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr is not None and ptr != ffi.NULL:
            self._free(ptr)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
