#!/usr/bin/env bash
# LoRA on top of retrieval and the repo memory, on projects that repeat themselves, on a many-core machine in two
# calls of under ten minutes each: bench/tune_gain.py per project, each on its own 2 cores.
#
#   bench/device/tune_repos.sh a WORK   tune every project (BUDGET_S, default 400) beside its base evaluation
#   bench/device/tune_repos.sh b WORK   evaluate each served adapter (WORK holds what phase a left)
#   (repository root; carry .whl and the projects' sdists under .work/eval/sdist, and WORK for phase b)
# Evaluations: 600 line samples, `--retrieval true --memory` (tag "all"), 2 threads each, so the pairs compare
# everything with LoRA against everything without it. Environment: PROJECTS (default netmiko, stripe, wagtail),
# SAMPLES, STOP_S (phase a's stop, default 540 s), SETUP=0 (wheels and the native build already in place).
set -uo pipefail
phase=$1; work=$2
export PYTHONPATH=/tmp/site:$(pwd) PYTHONUNBUFFERED=1
if [ "${SETUP:-1}" != 0 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  python3 native/build.py inplace > /dev/null || exit 1
fi
projects=${PROJECTS:-netmiko==4.8.0 stripe==16.1.0 wagtail==8.0.1}
common=(--samples "${SAMPLES:-600}" --blocks 0 --threads 2 --eval-args "--retrieval true --memory" --eval-tag all
        --out "$work" --budget-s "${BUDGET_S:-400}")
mkdir -p "$work"
if [ "$phase" = b ]; then  # the adapters' paths as phase a wrote them, moved to where WORK is now
  python3 - "$work" <<'PY'
import glob, json, os, re, sys
work = os.path.abspath(sys.argv[1])
for f in glob.glob(os.path.join(work, "*-tune.json")):
    d = json.load(open(f))
    if d.get("adapter"):
        d["adapter"] = re.sub(r"^.*?/([^/]+-state/)", work.replace("\\", "/") + r"/\1", d["adapter"])
        json.dump(d, open(f, "w"))
PY
fi
lscpu | grep -E "Model name|^CPU\(s\)" > "$work/cpu.txt"
core=0; n=$(nproc)
for p in $projects; do
  tag=${p/==/-}
  if [ "$phase" = a ]; then
    taskset -c $((core % n)),$(((core + 1) % n)) python3 bench/tune_gain.py --project "$p" --base-only "${common[@]}" \
      > "$work/$tag-base.md" 2>&1 &
    core=$((core + 2))
    # tune_gain tunes, then finds the base evaluation above (or makes it), then evaluates the adapter: the
    # call's time limit stops it there; phase b resumes it from the files it left
    taskset -c $((core % n)),$(((core + 1) % n)) timeout "${STOP_S:-540}" python3 bench/tune_gain.py --project "$p" \
      "${common[@]}" > "$work/$tag-a.md" 2>&1 &
  else
    rm -f "$work/$tag-tuned-all.json"
    taskset -c $((core % n)),$(((core + 1) % n)) python3 bench/tune_gain.py --project "$p" "${common[@]}" > "$work/$tag.md" 2>&1 &
  fi
  core=$((core + 2))
done
wait
# what comes back: one archive of the results and the adapters (the tuner's other state stays)
tar -czf "${OUT:-$work}/tune_repos.tgz" -C "$work" $(cd "$work" && find . -maxdepth 1 -type f -printf '%P\n') \
  $(cd "$work" && find . -path './*-state/*' -name '*.gguf' -printf '%P\n')
