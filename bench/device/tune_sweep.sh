#!/usr/bin/env bash
# Fine-tuning configurations side by side on a many-core machine: bench/tune_gain.py per (configuration, project),
# each on its own 2 cores (the issue's budget: 10 minutes on 2 cores), as many at once as there are free pairs;
# the base model's evaluation once per project, shared by every configuration.
#
#   bench/device/tune_sweep.sh WORK FIRST_CORE "NAME|TUNE ARGS[|TUNE_GAIN ARGS]" ...
#   (repository root; carry .whl, .work/eval/src)
#   e.g. bench/device/tune_sweep.sh /tmp/w 0 "defaults|" "lr1e3|--tune-lr 1e-3"
#   results: WORK/gain/NAME/<project>-{base,tuned,tune}.json and .md, WORK/sweep.log (a table row per job)
# Environment: MODEL (GGUF, default the shipped one), BUDGET_S (default 600), PROJECTS (default the three of
# bench/eval_projects.py), SAMPLES / BLOCKS (evaluation samples, default 200 / 50), SETUP=0 (wheels and the
# native build already in place), BASE_FROM (a folder of earlier <project>-base.json of the same model and
# samples: copied, and the base evaluations skipped).
set -uo pipefail
work=$1; first=$2; shift 2
export PYTHONPATH=/tmp/site:$(pwd) PYTHONUNBUFFERED=1 CKLS_ISA=${CKLS_ISA:-avx2}
log="$work/sweep.log"
mkdir -p "$work/gain/base"
if [ "${SETUP:-1}" != 0 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  python3 native/build.py inplace > /dev/null
fi
projects=${PROJECTS:-sqlparse==0.6.1 tomlkit==0.15.2 marshmallow==4.4.0}
model=${MODEL:+--model $MODEL}
evalargs="--samples ${SAMPLES:-200} --blocks ${BLOCKS:-50} --threads 2"
n_cores=$(nproc)
slots=$(( (n_cores - first) / 2 ))
declare -a busy
for ((s = 0; s < slots; s++)); do busy[$s]=0; done
lscpu | grep -E "Model name|^CPU\(s\)|Thread" >> "$log"
echo "== $slots slots of 2 cores from core $first, $(date +%T)" >> "$log"

slot() {  # prints a free slot, waiting for one
  while :; do
    for ((s = 0; s < slots; s++)); do
      if [ "${busy[$s]}" = 0 ] || ! kill -0 "${busy[$s]}" 2> /dev/null; then echo "$s"; return; fi
    done
    sleep 2
  done
}

launch() {  # launch OUTFILE ARGS...: bench/tune_gain.py on a free pair of cores
  local out=$1; shift
  local s; s=$(slot)
  local c=$((first + 2 * s))
  taskset -c "$c,$((c + 1))" python3 bench/tune_gain.py $model $evalargs "$@" > "$out" 2>&1 &
  busy[$s]=$!
}

for p in $projects; do  # (bench/tune_gain.py evaluates the base model after tuning: these are done by then)
  if [ -n "${BASE_FROM:-}" ]; then cp "$BASE_FROM/${p/==/-}-base.json" "$work/gain/base/"; continue; fi
  launch "$work/gain/base/${p%%==*}.md" --project "$p" --out "$work/gain/base" --base-only
done
for p in $projects; do
  for job in "$@"; do
    IFS='|' read -r name args gargs <<< "$job"
    d="$work/gain/$name"; mkdir -p "$d"
    ln -sf "../base/${p/==/-}-base.json" "$d/${p/==/-}-base.json"
    launch "$d/${p%%==*}.md" --project "$p" --out "$d" --budget-s "${BUDGET_S:-600}" --tune-args "$args" $gargs
  done
done
wait
for job in "$@"; do
  IFS='|' read -r name args <<< "$job"
  echo "== $name ($args)" >> "$log"
  for p in $projects; do grep '^| [a-z]' "$work/gain/$name/${p%%==*}.md" | tail -1 >> "$log"; done
done
echo "done $(date +%T)" >> "$log"
