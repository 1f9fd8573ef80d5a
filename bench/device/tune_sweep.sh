#!/usr/bin/env bash
# Fine-tuning configurations side by side on a many-core machine: bench/tune_gain.py per (configuration, project),
# each pinned to its own 2 cores (the issue's budget: 10 minutes on 2 cores), base evaluations shared.
#
#   bench/device/tune_sweep.sh WORK FIRST_CORE "NAME|PROJECT|TUNE ARGS" ...   (repository root; carry .work/eval/src)
#   e.g. bench/device/tune_sweep.sh /tmp/w 4 "base|sqlparse==0.6.1|" "lr1e3|sqlparse==0.6.1|--tune-lr 1e-3"
#   results: WORK/gain/NAME/<project>-{base,tuned,tune}.json, WORK/gain/NAME.md (table), WORK/sweep.log
# Environment: MODEL (GGUF, default the shipped one), BUDGET_S (default 600).
set -uo pipefail
work=$1; core=$2; shift 2
export PYTHONPATH=/tmp/site:$(pwd) PYTHONUNBUFFERED=1
mkdir -p "$work/gain/base"
model=${MODEL:+--model $MODEL}
log="$work/sweep.log"
projects=$(printf '%s\n' "$@" | cut -d'|' -f2 | sort -u)
echo "== base evaluations $(date +%T)" >> "$log"
c=$core; pids=()
for p in $projects; do  # the base model's score once per project, shared by every configuration
  taskset -c "$c,$((c + 1))" python3 bench/tune_gain.py $model --project "$p" --out "$work/gain/base" \
    --base-only --threads 2 > "$work/gain/base-${p%%==*}.log" 2>&1 & pids+=($!)
  c=$((c + 2))
done
wait "${pids[@]}"
echo "== tuning $(date +%T)" >> "$log"
c=$core; pids=()
for job in "$@"; do
  IFS='|' read -r name p args <<< "$job"
  d="$work/gain/$name"; mkdir -p "$d"
  cp "$work/gain/base/${p/==/-}-base.json" "$d/"
  taskset -c "$c,$((c + 1))" python3 bench/tune_gain.py $model --project "$p" --out "$d" \
    --budget-s "${BUDGET_S:-600}" --threads 2 --tune-args "$args" > "$d/${p%%==*}.md" 2>&1 & pids+=($!)
  c=$((c + 2))
done
for p in "${pids[@]}"; do wait "$p"; done
for job in "$@"; do
  IFS='|' read -r name p args <<< "$job"
  echo "== $name ($args) $p" >> "$log"; grep '^|' "$work/gain/$name/${p%%==*}.md" | tail -1 >> "$log"
done
echo "done $(date +%T)" >> "$log"
