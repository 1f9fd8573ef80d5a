#!/usr/bin/env bash
# Model factory run on a GPU machine: corpus from this machine's own stdlib and site-packages → tokenizer →
# FIM encoding → pretraining for a fixed wall-clock budget (torch.compile, bf16, torchrun over every GPU) →
# held-out evaluation → GGUF export (f16, q8_0) → results folder.
#
#   bench/device/train.sh prepare WORK            corpus, tokenizer, encoding (foreground, ~2 min)
#   bench/device/train.sh smoke WORK              30 steps of the real model + eval + export (checks the path)
#   bench/device/train.sh train WORK BUDGET_S     the run itself, then export; log in WORK/run.log
#   bench/device/train.sh collect WORK DEST       copy results to DEST (files > 15 MiB split into .partNN)
#
# Environment: CKLS_SRC (folder holding the ckls package; default: repository root), PYTHON (default python3),
# TRAIN_ARGS (extra arguments for `ckls.train train`), FIM_RATE (share of files laid out as FIM, default 0.5),
# SPM_RATE (share of FIM examples in SPM order, default 0.5), EXTRA (a site.tar.xz of more distributions from
# bench/device/extra_sources.sh, unpacked and read beside this Python's site-packages), EXAMPLE_CHARS (characters
# of a cursor example: 3,800 fits a 1,024-token window; 5,700 holds the server's whole prompt in a 2,048 one).
set -euo pipefail
cmd=$1; work=$2
src=${CKLS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
py=${PYTHON:-python3}
export PYTHONPATH=$src${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
mkdir -p "$work"
ngpu=$($py -c 'import torch; print(max(1, torch.cuda.device_count()))')
model_args="--dim 512 --layers 8 --heads 8 --ffn 1408 --seq 1024 --batch 128 --micro 64 --lr 2e-3 --warmup 300"

case $cmd in
prepare)
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    $py -c 'import sys, torch, tokenizers, gguf; print(sys.version.split()[0], torch.__version__, tokenizers.__version__)'
    nproc; } | tee "$work/env.txt"
  t0=$(date +%s)
  extra=()
  if [ -n "${EXTRA:-}" ]; then
    mkdir -p "$work/extra" && tar -C "$work/extra" -xJf "$EXTRA" && extra=(--extra-site "$work/extra/site")
  fi
  $py -m ckls.train corpus --out "$work/corpus" "${extra[@]}"
  t1=$(date +%s)
  $py -m ckls.train tokenizer --corpus "$work/corpus" --vocab 16384
  t2=$(date +%s)
  $py -m ckls.train encode --corpus "$work/corpus" --fim-rate "${FIM_RATE:-0.5}" --spm-rate "${SPM_RATE:-0.5}" --line-rate 0.5 \
    ${EXAMPLE_CHARS:+--example-chars $EXAMPLE_CHARS}
  t3=$(date +%s)
  echo "{\"corpus_s\": $((t1-t0)), \"tokenizer_s\": $((t2-t1)), \"encode_s\": $((t3-t2))}" | tee "$work/prepare_times.json"
  ;;
smoke)
  rm -rf "$work/smoke"
  torchrun --standalone --nproc_per_node="$ngpu" -m ckls.train train --data "$work/corpus" --out "$work/smoke" \
    $model_args --compile --bf16 --max-steps 40 --log-every 10 --eval-tokens 200000 --ckpt-every 0 ${TRAIN_ARGS:-}
  $py -m ckls.train export --ckpt "$work/smoke/ckpt.pt" --tokenizer "$work/corpus/tokenizer.json" \
    --out "$work/smoke/model-{type}.gguf" --type q8_0
  ;;
train)
  budget=$3
  {
    torchrun --standalone --nproc_per_node="$ngpu" -m ckls.train train --data "$work/corpus" --out "$work/run" \
      $model_args --compile --bf16 --time-budget "$budget" --log-every 100 --ckpt-every 1000 \
      --eval-tokens 8000000 ${TRAIN_ARGS:-}
    $py -m ckls.train export --ckpt "$work/run/ckpt.pt" --tokenizer "$work/corpus/tokenizer.json" \
      --out "$work/run/ckls-code-{type}.gguf" --type f16 q8_0
    ls -l "$work/run"
    echo DONE
  } > "$work/run.log" 2>&1 || echo FAILED >> "$work/run.log"
  ;;
collect)
  # At most 8 files come back: small results in one archive, the q8_0 GGUF in 15 MiB parts.
  dest=$3; mkdir -p "$dest"
  small=()
  for f in run/metrics.json run/log.jsonl run.log corpus/manifest.json corpus/tokenizer.json corpus/meta.json \
           env.txt prepare_times.json smoke.log; do
    [ -f "$work/$f" ] && small+=("$f")
  done
  tar -C "$work" -czf "$dest/results.tgz" "${small[@]}"
  g="$work/run/ckls-code-q8_0.gguf"
  if [ -f "$g" ]; then
    split -b 15M -d "$g" "$dest/ckls-code-q8_0.gguf.part"
    sha256sum "$g" | sed "s#$work/run/##" > "$dest/ckls-code-q8_0.gguf.sha256"
  fi
  ls -l "$dest"
  ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
