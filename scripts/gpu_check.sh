#!/usr/bin/env bash
# GPU check of stage 2, DPO and synthesis (random F5TTS_v1_Base-shape weights, synthetic data, < 3 min on
# one GPU): prints each stage's time and peak memory. Pass --tiny to smoke-test it on a CPU.
#   bash scripts/gpu_check.sh [--json out.json] [--tiny]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
PYTHONUNBUFFERED=1 exec "$PY" -m f5rl.scripts.gpu_check "$@"
