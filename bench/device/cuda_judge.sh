#!/usr/bin/env bash
# The CUDA side of the kernel judge on the lent GPU machine: tests/test_verify_cuda.py (its GPU tests run there
# only) and bench/cuda_judge.py over the CUDA corpus (verdicts, first sanitizer finding, optional benchmark).
#
#   bench/device/cuda_judge.sh OUT [cuda_judge.py args...]   (repository root; carry .whl and .debs)
#
# .whl/ holds the cp312 wheels the judge imports (cffi, pyseccomp, ...); .debs/ holds bubblewrap and the
# libraries it needs as Debian packages (the machine has no package index). They are unpacked beside the system,
# never over it: `dpkg -x` into / would replace the /lib -> usr/lib link with a folder holding only their files,
# and every later link against libm (nvcc's host step included) fails with "cannot find /lib/.../libm.so.6".
set -euo pipefail
out=$1; shift
site=/tmp/site-judge  # its own: a training run beside it reads /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $site .whl/*.whl
root=/tmp/debs
for f in .debs/*.deb; do dpkg -x "$f" $root; done
for d in usr/bin usr/lib/x86_64-linux-gnu lib/x86_64-linux-gnu; do
  [ -d "$root/$d" ] || continue
  dest=/usr/${d#usr/}
  mkdir -p "$dest"
  cp -an "$root/$d/." "$dest/"   # -n: what the system has stays
done
ldconfig 2>/dev/null || true
export PYTHONPATH=$site:$PWD PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; which nvcc compute-sanitizer bwrap; } \
  | tee "$out/env.txt"
python3 -m pytest -q -rs -p no:cacheprovider tests/test_verify_cuda.py 2>&1 | tail -40 | tee "$out/tests.txt"
python3 bench/cuda_judge.py --bench-s 0 "$@" 2>&1 | tee "$out/judge.md"
