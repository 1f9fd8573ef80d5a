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
# The judge's cell runs this Python with a clean environment and a private /tmp, so what it imports (pyseccomp,
# cffi) must sit in the interpreter's own site-packages, not in a PYTHONPATH folder: each carried wheel whose
# module this Python lacks is installed into it (the ones it has stay as they are).
for w in .whl/*.whl; do
  mod=$(basename "$w" | cut -d- -f1); [ "$mod" = pyyaml ] && mod=yaml
  python3 -c "import importlib.util as u, sys; sys.exit(u.find_spec('$mod') is None)" 2>/dev/null ||
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "$w"
done
root=/tmp/debs
for f in .debs/*.deb; do dpkg -x "$f" $root; done
for d in usr/bin usr/lib/x86_64-linux-gnu lib/x86_64-linux-gnu; do
  [ -d "$root/$d" ] || continue
  dest=/usr/${d#usr/}
  mkdir -p "$dest"
  cp -an "$root/$d/." "$dest/"   # -n: what the system has stays
done
ldconfig 2>/dev/null || true
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; which nvcc compute-sanitizer bwrap; } \
  | tee "$out/env.txt"
# every call the driver makes that the filters refuse, in one run (the survey build answers them EPERM and goes on)
# and, with the filters off, every call the driver makes with its result (the machine has no strace)
{ python3 bench/cuda_survey.py --entry axpy_cuda 2>&1 || true; } | tee "$out/survey.txt"
{ python3 bench/cuda_survey.py --entry axpy_cuda --trace 2>&1 || true; } > "$out/trace.txt"
tail -5 "$out/trace.txt"
# the corpus runs whatever the tests say (a failing test must not hide the verdicts)
{ python3 -m pytest -q -rs -p no:cacheprovider tests/test_verify_cuda.py 2>&1 || echo "pytest exit $?"; } \
  | tee "$out/tests.txt" | tail -40
python3 bench/cuda_judge.py --bench-s 0 "$@" 2>&1 | tee "$out/judge.md"
