#!/usr/bin/env bash
# Scale-out check of the model factory: the same `ckls.train train` command on 1 and 2 GPUs at the same global
# batch, and checkpoints resumed on the other GPU count. Needs a machine with 2 GPUs.
#
#   bench/device/scale.sh run WORK STEPS     corpus (train.sh prepare) + the runs below; log in WORK/scale.log
#   bench/device/scale.sh wide WORK STEPS N  A (1 GPU) if not there, and W<N>: the same run on N GPUs
#   python bench/scale_report.py WORK/scale  throughput, efficiency, loss-curve and held-out differences
#
# Runs (each in WORK/scale/NAME, all with the model of train.sh, --max-steps STEPS, seed 1234 unless said):
#   A  1 GPU, uninterrupted                                   (the reference)
#   B  1 GPU to STEPS/2, then resumed on 2 GPUs               (1 → 2 resume; first half = rerun of A)
#   C  2 GPUs to STEPS/2, then resumed on 2 GPUs              (the 2-GPU run; throughput)
#   D  C's checkpoint at STEPS/2, resumed on 1 GPU            (2 → 1 resume)
#   E  1 GPU, seed 1235                                       (seed-to-seed spread, for scale)
# A and B run side by side, one GPU each, as do D and E.
set -Eeuo pipefail
cmd=$1; work=$2; steps=${3:-300}
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH=${CKLS_SRC:-$(cd "$here/../.." && pwd)}${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
# NVLink multicast stays off (shared hosts): NCCL, PyTorch symmetric memory, NVSHMEM.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
half=$((steps / 2))
# SCALE_MODEL replaces the model and precision flags (a tiny CPU model checks this script without a GPU).
model=${SCALE_MODEL:-"--dim 512 --layers 8 --heads 8 --ffn 1408 --seq 1024 --batch 128 --micro 64 --compile --bf16"}
args="--data $work/corpus $model --lr 2e-3 --warmup 50 --max-steps $steps --log-every 10 --ckpt-every 0 \
  --eval-tokens 2000000"

train() {  # train GPUS OUT [extra args...]
  local gpus=$1 out=$2; shift 2
  local vis; vis=$(seq -s, 0 $(( ${gpus%b} - 1 ))); [ "$gpus" = 1b ] && vis=1 && gpus=1
  CUDA_VISIBLE_DEVICES=$vis torchrun --standalone --nproc_per_node="$gpus" -m ckls.train train $args \
    --out "$out" "$@" >> "$out.log" 2>&1
}

case $cmd in
run)
  mkdir -p "$work/scale"
  exec > "$work/scale.log" 2>&1
  trap 'echo FAILED' ERR
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  nvidia-smi topo -m || true
  [ -f "$work/corpus/meta.json" ] || bash "$here/train.sh" prepare "$work"
  s="$work/scale"; rm -rf "$s"/[A-E] "$s"/*.log
  echo "phase 1 $(date +%T): A (GPU 0) and B to $half (GPU 1)"
  train 1 "$s/A" & pa=$!; train 1b "$s/B" --stop-after "$half"; wait $pa
  echo "phase 2 $(date +%T): C on 2 GPUs to $half"
  train 2 "$s/C" --stop-after "$half"
  cp -r "$s/C" "$s/D"
  echo "phase 3 $(date +%T): C resumed on 2 GPUs"
  train 2 "$s/C"
  echo "phase 4 $(date +%T): B resumed on 2 GPUs"
  train 2 "$s/B"
  echo "phase 5 $(date +%T): D resumed on 1 GPU (GPU 0), E seed 1235 (GPU 1)"
  train 1 "$s/D" & pd=$!; train 1b "$s/E" --seed 1235; wait $pd
  echo "done $(date +%T)"
  python3 "$here/../scale_report.py" "$s"
  ;;
wide)  # wide WORK STEPS N: the same command on N GPUs (W<N>) beside A on 1, for the N-GPU efficiency
  n=${4:?usage: scale.sh wide WORK STEPS GPUS}
  mkdir -p "$work/scale"
  exec >> "$work/scale.log" 2>&1
  trap 'echo FAILED' ERR
  nvidia-smi topo -m || true
  [ -f "$work/corpus/meta.json" ] || bash "$here/train.sh" prepare "$work"
  s="$work/scale"
  [ -f "$s/A/metrics.json" ] || { echo "A on 1 GPU $(date +%T)"; rm -rf "$s/A" "$s/A.log"; train 1 "$s/A"; }
  echo "W$n on $n GPUs $(date +%T)"; rm -rf "$s/W$n" "$s/W$n.log"
  train "$n" "$s/W$n"
  echo "done $(date +%T)"
  python3 "$here/../scale_report.py" "$s"
  ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
