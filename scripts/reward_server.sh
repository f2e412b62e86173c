#!/usr/bin/env bash
# Serve reward providers over HTTP (loopback by default) so the reward models run in their own process,
# on another GPU or host; train with the `remote` provider pointing at it:
#   rl.rewards.providers='[{name: remote, config: {url: "http://127.0.0.1:8001", provider: whisper_asr}}]'
#   PROVIDERS=whisper_asr,resemblyzer_sim PORT=8001 bash scripts/reward_server.sh [--dry-run]
set -euo pipefail
source "$(dirname "$0")/_common.sh"
run $PY -m f5rl.rewards.serve --providers "${PROVIDERS:-whisper_asr,resemblyzer_sim}" --host "${HOST:-127.0.0.1}" \
  --port "${PORT:-8001}" --device "${DEVICE:-cpu}"
