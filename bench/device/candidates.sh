#!/usr/bin/env bash
# Default-model candidates on one GPU machine, judged by completion quality on its CPU cores:
#   S  the student (the shipped shape, 34M) trained alone
#   T  a teacher (84M), trained side by side with S on the same GPU
#   D  the same student distilled from T (KL + CE), same steps as S: equal student compute
# each exported to q8_0 GGUF and evaluated with bench/eval_projects.py (the server's prompt, three PyPI projects
# the corpus does not hold), beside the shipped model, on the machine's CPU (1 thread per project).
#
#   bench/device/candidates.sh run WORK STEPS [T_STEPS]  (repository root; carry .whl and .work/eval/src)
#   bench/device/candidates.sh student WORK STEPS S alone, the GPU to itself, exported to WORK/S.gguf (evaluate
#                                                 elsewhere: python bench/eval_projects.py --model S.gguf)
#   bench/device/candidates.sh retrieval WORK STEPS  S alone on prompts with retrieved windows (the default encode),
#                                                 then S and the shipped model evaluated with and without retrieval
#                                                 (paired: same cursors), SAMPLES line + BLOCKS block samples each
#   progress and figures: WORK/candidates.log; results: WORK/results.tgz, WORK/D.gguf, WORK/S.gguf
#
# Environment: FIM_RATE (default 0.5), SPM_RATE (default 0.8), ALIGNED (share of windows starting at a sequence,
# default 0.5), KD_ALPHA (default 0.5), EXTRA (more sources, see train.sh), SHIPPED=0 (skip evaluating the
# shipped model), SWEEP (arguments for tune_sweep.sh, run on the CPU cores beside training once the corpus is
# ready), TIME_BUDGET (student: seconds of training instead of STEPS), SEQ (tokens a training window, default 1024;
# 2048 with EXAMPLE_CHARS=5700 trains on the server's whole prompt: see train.sh), MIDDLE_WEIGHT (loss weight of
# the cursor examples' middles, default 1; the middles are ~1.3% of the stream).
set -Eeuo pipefail
cmd=$1; work=$2; steps=${3:-2000}; t_steps=${4:-$steps}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PYTHONPATH=/tmp/site:$root PYTHONUNBUFFERED=1 CKLS_ISA=avx2
student="--dim 512 --layers 8 --heads 8 --ffn 1408"
teacher="--dim 768 --layers 10 --heads 12 --ffn 2048"
seq=${SEQ:-1024}  # tokens a window; the batch keeps its 131,072 tokens a step
common="--data $work/corpus --seq $seq --batch $((131072 / seq)) --micro $((65536 / seq)) --lr 2e-3 --warmup 300 --compile --bf16 \
  --log-every 100 --ckpt-every 0 --eval-tokens 4000000 --aligned ${ALIGNED:-0.5} --middle-weight ${MIDDLE_WEIGHT:-1}"

train() {  # train NAME [args...]
  local name=$1; shift
  torchrun --standalone --nproc_per_node=1 -m ckls.train train $common --out "$work/$name" "$@" \
    >> "$work/$name.log" 2>&1
}

export_gguf() {
  python3 -m ckls.train export --ckpt "$work/$1/ckpt.pt" --tokenizer "$work/corpus/tokenizer.json" \
    --out "$work/$1.gguf" --type q8_0 >> "$work/$1.log" 2>&1
}

evaluate() {  # evaluate NAME GGUF [ckls eval flags]: the three projects side by side, one thread each
  local name=$1 gguf=$2 pids=()
  shift 2
  for p in sqlparse==0.6.1 tomlkit==0.15.2 marshmallow==4.4.0; do
    python3 bench/eval_projects.py --model "$gguf" --threads "${EVAL_THREADS:-1}" --cache .work/eval --out "$work/eval" \
      --samples "${SAMPLES:-200}" --blocks "${BLOCKS:-50}" --project "$p" --tag="-$name" -- "$@" \
      > "$work/eval-$name-${p%%==*}.log" 2>&1 & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  python3 bench/eval_projects.py --report --cache .work/eval --out "$work/eval" --tag="-$name" > "$work/eval-$name.md"
  echo "== eval $name $(date +%T)"; cat "$work/eval-$name.md"
}

setup() {  # the carried wheels, the native build, what machine this is
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  python3 native/build.py inplace > /dev/null
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  lscpu | grep -E "Model name|^CPU\(s\)" || true
}

case $cmd in
run)
  mkdir -p "$work/eval"
  exec > "$work/candidates.log" 2>&1
  trap 'echo FAILED' ERR
  setup
  pe=
  [ "${SHIPPED:-1}" = 0 ] || { evaluate shipped ckls/models/default.gguf & pe=$!; }
  [ -f "$work/corpus/meta.json" ] || FIM_RATE=${FIM_RATE:-0.5} SPM_RATE=${SPM_RATE:-0.8} \
    bash "$here/train.sh" prepare "$work"
  [ -z "${SWEEP:-}" ] || { eval "setsid bash $here/tune_sweep.sh $work $SWEEP" > "$work/sweep.out" 2>&1 & }
  echo "== train S ($steps steps) and T ($t_steps) $(date +%T)"
  train T $teacher --max-steps "$t_steps" & pt=$!
  train S $student --max-steps "$steps"
  export_gguf S
  evaluate S "$work/S.gguf" & ps=$!
  wait $pt
  echo "== distil D $(date +%T)"
  export_gguf T
  train D $student --max-steps "$steps" --teacher "$work/T/ckpt.pt" --kd-alpha "${KD_ALPHA:-0.5}"
  export_gguf D
  evaluate D "$work/D.gguf" & pd=$!
  evaluate T "$work/T.gguf"
  wait $pe $ps $pd || true
  for n in S T D; do echo "== $n"; cat "$work/$n/metrics.json"; done
  tar -C "$work" -czf "$work/results.tgz" candidates.log S/metrics.json T/metrics.json D/metrics.json \
    S/log.jsonl T/log.jsonl D/log.jsonl S.log T.log D.log eval corpus/manifest.json corpus/meta.json \
    corpus/tokenizer.json env.txt prepare_times.json
  echo "done $(date +%T)"
  ;;
student)
  mkdir -p "$work"
  exec > "$work/candidates.log" 2>&1
  trap 'echo FAILED' ERR
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/gguf*.whl
  [ -f "$work/corpus/meta.json" ] || FIM_RATE=${FIM_RATE:-0.5} SPM_RATE=${SPM_RATE:-0.8} \
    bash "$here/train.sh" prepare "$work"
  echo "== train S $(date +%T)"
  if [ -n "${TIME_BUDGET:-}" ]; then  # seconds of training (the schedule fitted to them) instead of STEPS
    train S $student --time-budget "$TIME_BUDGET"
  else
    train S $student --max-steps "$steps"
  fi
  export_gguf S
  cat "$work/S/metrics.json"
  echo "done $(date +%T)"
  ;;
retrieval)
  mkdir -p "$work/eval"
  exec > "$work/candidates.log" 2>&1
  trap 'echo FAILED' ERR
  setup
  [ -f "$work/corpus/meta.json" ] || FIM_RATE=${FIM_RATE:-0.5} SPM_RATE=${SPM_RATE:-0.8} \
    bash "$here/train.sh" prepare "$work"
  echo "== train S ($steps steps) $(date +%T)"
  train S $student --max-steps "$steps" & pt=$!
  # the shipped model on the CPU while the GPU trains (the same cursors as S's runs below)
  if [ "${SHIPPED:-1}" != 0 ]; then
    evaluate shipped ckls/models/default.gguf --retrieval false & p0=$!
    evaluate shipped-r ckls/models/default.gguf --retrieval true
    wait $p0
  fi
  wait $pt
  export_gguf S
  echo "== S exported $(date +%T)"
  export EVAL_THREADS=2  # the GPU is done: the cores are the evaluations'
  evaluate S "$work/S.gguf" --retrieval false & p1=$!
  evaluate S-r "$work/S.gguf" --retrieval true
  wait $p1
  cat "$work/S/metrics.json"
  tar -C "$work" -czf "$work/results.tgz" candidates.log S/metrics.json S/log.jsonl S.log eval \
    corpus/manifest.json corpus/meta.json corpus/tokenizer.json env.txt prepare_times.json
  echo "done $(date +%T)"
  ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
