#!/usr/bin/env bash
# Prune + distil against the student trained alone and the student distilled from the unpruned teacher, at equal
# GPU time (issue 24 item 2), on one GPU machine; completion quality judged on its CPU cores (bench/eval_projects.py).
# Every arm is charged BUDGET_S seconds of GPU training, the teacher's time included where an arm needs it:
#   T  a teacher (83M, ~2.5x the student; candidates.sh's), trained TEACHER_S seconds (default BUDGET_S / 2)
#   P  T pruned to the student's shape (python -m ckls.train prune: activation importance on 512 calibration
#      windows), then distilled from T (train --init P --teacher T) for BUDGET_S - TEACHER_S - the pruning's time
#   D  the student from random weights distilled from T for BUDGET_S - TEACHER_S
#   S  the student (the shipped shape, 34M) alone for BUDGET_S
# The arms run one after another (a shared GPU would make the budgets unequal); each is exported to q8_0 GGUF and
# evaluated on the CPU while the next one trains.
#
#   bench/device/prune.sh start WORK BUDGET_S [TEACHER_S]   `run` in the background (setsid); returns at once
#   bench/device/prune.sh run WORK BUDGET_S [TEACHER_S]     the same in the foreground
#   bench/device/prune.sh status WORK                       the log's last lines (ends with "done" or FAILED)
#   bench/device/prune.sh collect WORK DEST                 results.tgz, summary.json (+ GGUF="P S": those models)
#   (repository root; carry .whl and .work/eval/src as for candidates.sh)
#   progress and figures: WORK/prune.log; results: WORK/summary.json, WORK/results.tgz, WORK/{P,D,S,T}.gguf
#
# Environment: NGPU (processes per arm, one per GPU; default 1; the micro-batch shrinks so that 128 splits), STUDENT / TEACHER (shape flags; the teacher's head size must equal the student's: 768/12 = 512/8),
# COMMON (training flags), FIM_RATE / SPM_RATE / ALIGNED / KD_ALPHA / EXTRA / SHIPPED=0 as candidates.sh,
# WINDOWS (calibration windows, default 512), EVAL=0 (no completion eval), SETUP=0 (no wheel install or native
# build: a checkout that has them), PYTHON (default python3).
set -Eeuo pipefail
cmd=${1:?usage: prune.sh start|run|status|collect WORK [BUDGET_S [TEACHER_S] | DEST]}; work=${2:?WORK folder}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-python3}
export PYTHONPATH=/tmp/site:$root${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 CKLS_ISA=${CKLS_ISA:-avx2}
student=${STUDENT:-"--dim 512 --layers 8 --heads 8 --ffn 1408"}
teacher=${TEACHER:-"--dim 768 --layers 10 --heads 12 --ffn 2048"}
ngpu=${NGPU:-1}; micro=$(( 128 / ngpu < 64 ? 128 / ngpu : 64 ))  # the global batch of 128 splits over the GPUs
common=${COMMON:-"--seq 1024 --batch 128 --micro $micro --lr 2e-3 --warmup 300 --compile --bf16 --log-every 100 \
  --ckpt-every 0 --eval-tokens 4000000 --aligned ${ALIGNED:-0.5}"}

flag() {  # flag NAME SHAPE: the value of --NAME in a shape string
  local want=$1; shift
  set -- $1
  while [ $# -gt 1 ]; do [ "$1" = "--$want" ] && { echo "$2"; return; }; shift; done
  echo "prune.sh: no --$want in '$*'" >&2; return 1
}

train() {  # train NAME [args...]
  local name=$1; shift
  $py -m torch.distributed.run --standalone --nproc_per_node="$ngpu" -m ckls.train train --data "$work/corpus" \
    $common --out "$work/$name" "$@" >> "$work/$name.log" 2>&1
}

export_gguf() {
  $py -m ckls.train export --ckpt "$work/$1/ckpt.pt" --tokenizer "$work/corpus/tokenizer.json" \
    --out "$work/$1.gguf" --type q8_0 >> "$work/$1.log" 2>&1
}

evaluate() {  # evaluate NAME GGUF: the three projects side by side, one thread each
  [ "${EVAL:-1}" = 0 ] && return 0
  local name=$1 gguf=$2 pids=()
  for p in sqlparse==0.6.1 tomlkit==0.15.2 marshmallow==4.4.0; do
    $py bench/eval_projects.py --model "$gguf" --threads "${EVAL_THREADS:-1}" --cache .work/eval --out "$work/eval" \
      --samples "${SAMPLES:-200}" --blocks "${BLOCKS:-50}" --project "$p" --tag="-$name" \
      > "$work/eval-$name-${p%%==*}.log" 2>&1 & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  $py bench/eval_projects.py --report --cache .work/eval --out "$work/eval" --tag="-$name" > "$work/eval-$name.md"
  echo "== eval $name $(date +%T)"; cat "$work/eval-$name.md"
}

secs() { $py -c "import sys; print(f'{max(0.0, float(eval(sys.argv[1]))):.1f}')" "$1"; }

case $cmd in
start)
  mkdir -p "$work"
  setsid nohup bash "$0" run "$work" "${3:?BUDGET_S}" "${4:-}" > /dev/null 2>&1 < /dev/null &
  echo "started: bash $0 status $work"
  ;;
run)
  budget=${3:?BUDGET_S}; t_budget=${4:-}; t_budget=${t_budget:-$(secs "$budget / 2")}
  mkdir -p "$work/eval"
  exec > "$work/prune.log" 2>&1
  trap 'echo FAILED' ERR
  if [ "${SETUP:-1}" != 0 ]; then
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    $py native/build.py inplace > /dev/null
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  lscpu | grep -E "Model name|^CPU\(s\)" || true
  shape="--layers $(flag layers "$student") --dim $(flag dim "$student") --heads $(flag heads "$student") \
    --ffn $(flag ffn "$student")"
  pe=
  [ "${SHIPPED:-1}" = 0 ] || [ "${EVAL:-1}" = 0 ] || { evaluate shipped ckls/models/default.gguf & pe=$!; }
  [ -f "$work/corpus/meta.json" ] || FIM_RATE=${FIM_RATE:-0.5} SPM_RATE=${SPM_RATE:-0.8} \
    bash "$here/train.sh" prepare "$work"
  echo "== budget ${budget} s per arm; teacher ${t_budget} s $(date +%T)"
  echo "== train T $(date +%T)"
  train T $teacher --time-budget "$t_budget"
  echo "== prune T to $shape $(date +%T)"
  t0=$(date +%s.%N)
  $py -m ckls.train prune --ckpt "$work/T/ckpt.pt" --data "$work/corpus" --out "$work/P0/ckpt.pt" $shape \
    --windows "${WINDOWS:-512}" --micro 16 | tee "$work/prune.json"
  prune_s=$(secs "$(date +%s.%N) - $t0")
  rest=$(secs "$budget - $t_budget")
  p_rest=$(secs "$budget - $t_budget - $prune_s")
  echo "== distil P from the pruned T ($p_rest s; pruning took $prune_s s) $(date +%T)"
  train P $student --init "$work/P0/ckpt.pt" --teacher "$work/T/ckpt.pt" --kd-alpha "${KD_ALPHA:-0.5}" \
    --time-budget "$p_rest"
  export_gguf P
  evaluate P "$work/P.gguf" & pp=$!
  echo "== distil D from T, random start ($rest s) $(date +%T)"
  train D $student --teacher "$work/T/ckpt.pt" --kd-alpha "${KD_ALPHA:-0.5}" --time-budget "$rest"
  export_gguf D
  evaluate D "$work/D.gguf" & pd=$!
  echo "== train S alone ($budget s) $(date +%T)"
  train S $student --time-budget "$budget"
  export_gguf S
  export_gguf T
  export EVAL_THREADS=2  # the GPU is done: the cores are the evaluations'
  evaluate S "$work/S.gguf"
  wait $pp $pd ${pe:-} || true
  $py - "$work" "$budget" "$t_budget" "$prune_s" <<'EOF'
import json, sys
from pathlib import Path
work, budget, t_budget, prune_s = Path(sys.argv[1]), *map(float, sys.argv[2:])
out = {"budget_s": budget, "teacher_s": t_budget, "prune_s": prune_s, "arms": {}}
for name, charged in (("T", t_budget), ("P", budget), ("D", budget), ("S", budget)):
    m = json.loads((work / name / "metrics.json").read_text())
    out["arms"][name] = {"charged_gpu_s": charged, **{k: m.get(k) for k in (
        "steps", "train_seconds", "params", "heldout_loss", "heldout_fim_middle_loss", "heldout_cursor_middle_loss")}}
(work / "summary.json").write_text(json.dumps(out, indent=1))
print(json.dumps(out, indent=1))
EOF
  files=(prune.log summary.json prune.json eval corpus/manifest.json corpus/meta.json corpus/tokenizer.json)
  for n in T P D S; do files+=("$n/metrics.json" "$n/log.jsonl" "$n.log"); done
  for f in env.txt prepare_times.json; do [ -f "$work/$f" ] && files+=("$f"); done
  tar -C "$work" -czf "$work/results.tgz" "${files[@]}"
  echo "done $(date +%T)"
  ;;
status)
  tail -n "${LINES_SHOWN:-30}" "$work/prune.log" 2>/dev/null || echo "no log yet at $work/prune.log"
  ;;
collect)  # collect WORK DEST: results.tgz and summary.json; the GGUFs named in GGUF (e.g. "P S") in 15 MiB parts
  dest=${3:?DEST folder}; mkdir -p "$dest"
  for f in results.tgz summary.json; do [ -f "$work/$f" ] && cp "$work/$f" "$dest/"; done
  for n in ${GGUF:-}; do
    split -b 15M -d "$work/$n.gguf" "$dest/$n.gguf.part"
    (cd "$work" && sha256sum "$n.gguf") > "$dest/$n.gguf.sha256"
  done
  ls -l "$dest"
  ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
