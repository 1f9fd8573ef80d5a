"""llama.cpp (llama-cpp-python) as the benchmarks' peer: imported in one place, its build's CPU features printed
beside every result, and a build with AMX kernels refused up front.

Why refuse AMX: on Sapphire Rapids-class CPUs llama.cpp's AMX matmul segfaults on the first batch
(llama.cpp#20824, seen here on every synthetic model), which would end a benchmark with no result and no message.
Build the peer with native flags minus AMX, as .ci/run does (README, "Tests"); CKLS_PEER_AMX=1 lets such a build
run anyway where its AMX path works.
"""
from __future__ import annotations

import os

NO_AMX = ("CMAKE_ARGS=\"'-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' "
          "'-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'\" "
          "pip install --no-cache-dir --force-reinstall --no-deps llama-cpp-python==0.3.36")


def features(llama_cpp) -> str:
    """The build's CPU features as ggml reports them, e.g. 'AVX2 AVX512 AVX512_VNNI ... REPACK'."""
    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    return " ".join(part.split("=")[0].strip() for part in info.replace("CPU :", "").split("|")
                    if part.strip().endswith("= 1"))


def load(required: bool = True):
    """llama_cpp, or None when it is not installed and not required; SystemExit with the fix for an AMX build."""
    try:
        import llama_cpp
    except ImportError:
        if required:
            raise SystemExit("llama-cpp-python is not installed: pip install -e '.[parity]' (README, \"Tests\")")
        return None
    if "AMX_INT8" in features(llama_cpp).split() and os.environ.get("CKLS_PEER_AMX") != "1":
        raise SystemExit("this llama-cpp-python build runs llama.cpp's AMX kernels, which segfault on this CPU "
                         f"(llama.cpp#20824); rebuild it without them: {NO_AMX}")
    return llama_cpp
