#!/usr/bin/env bash
# Runtime speed vs llama.cpp on the lent GPU machine's CPU, pinned to two otherwise idle cores: the quiet
# 2-thread measurement the shared development machines cannot give. Both engines run AVX2 code (CKLS_ISA=avx2;
# the llama.cpp build carried in .whl/ was compiled on an AVX2 machine), so the ratio compares kernels, not ISAs.
#
#   bench/device/runtime.sh OUT [runtime.py args...]     (from the repository root; carry .whl)
#
# .whl/ holds cp312 wheels of cffi, pycparser, gguf, diskcache and llama_cpp_pkg.tar.xz (llama-cpp-python's
# installed package, shared libraries deduplicated); the machine cannot reach a package index.
set -euo pipefail
out=$1; shift
site=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $site .whl/*.whl
tar xJf .whl/llama_cpp_pkg.tar.xz -C $site
export PYTHONPATH=$site:$PWD PYTHONUNBUFFERED=1 CKLS_ISA=avx2
python3 native/build.py inplace >/dev/null
{ lscpu | grep -E "Model name|^CPU\(s\)|L3"; python3 --version; } | tee "$out/env.txt"
taskset -c 2,3 python3 bench/runtime.py --workdir /tmp/rt "$@" 2>&1 | tee "$out/runtime.txt"
