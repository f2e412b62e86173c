#!/usr/bin/env bash
# Stage 2 on N GPUs of one machine, or on several machines (run it on each with its MACHINE_RANK).
# Gradients are averaged over every process; with rl.repeat_count=R one GRPO group spans R processes.
#   NPROC=8 bash scripts/multi_gpu.sh [--dry-run] [key=value ...]
#   NNODES=2 MACHINE_RANK=0 MASTER=10.0.0.1 NPROC=16 bash scripts/multi_gpu.sh    (16 processes in all)
# On a CPU-only machine, NPROC=2 runs two gloo processes (how the tests check multi-process training).
set -euo pipefail
source "$(dirname "$0")/_common.sh"
NPROC=${NPROC:-2}
NNODES=${NNODES:-1}
CONFIG=${CONFIG:-F5TTS_RL}
LAUNCH=(accelerate launch --multi_gpu --num_processes "$NPROC" --num_machines "$NNODES" --mixed_precision bf16)
if [ "$NNODES" -gt 1 ]; then
  LAUNCH+=(--machine_rank "${MACHINE_RANK:?set MACHINE_RANK}" --main_process_ip "${MASTER:?set MASTER}"
           --main_process_port "${PORT:-29500}")
fi
overrides=()
for arg in "$@"; do [ "$arg" = "--dry-run" ] || overrides+=("$arg"); done
run "${LAUNCH[@]}" -m f5rl.train.train_rl -cn "$CONFIG" "${overrides[@]}"
