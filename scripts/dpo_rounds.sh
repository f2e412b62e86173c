#!/usr/bin/env bash
# Offline preference optimisation in rounds: text/prompt pairs, then K rounds of generate -> score ->
# pair -> flow-matching DPO, each from the previous round's policy; held-out prompts give the held-out
# pair accuracy and the fresh-sample reward before/after (rounds.json).
#   AUDIO_CONTEXTS=contexts.jsonl TEXTS=texts.txt HELD_OUT=held_out.jsonl INIT=ckpts/grpo/model_last.pt \
#   bash scripts/dpo_rounds.sh [--dry-run] [key=value ...]
set -euo pipefail
source "$(dirname "$0")/_common.sh"
WORK=${WORK:-ckpts/dpo_rounds}
overrides=()
for arg in "$@"; do [ "$arg" = "--dry-run" ] || overrides+=("$arg"); done
run $PY -m f5rl.prefs.create_text_context_pairs --audio_contexts "${AUDIO_CONTEXTS:?set AUDIO_CONTEXTS}" \
  --regular_texts "${TEXTS:?set TEXTS}" --nsamples_perpair 4 --out "$WORK/pairs_manifest.jsonl"
run $PY -m f5rl.prefs.iterate --manifest "$WORK/pairs_manifest.jsonl" --val_manifest "${HELD_OUT:?set HELD_OUT}" \
  --init_ckpt "${INIT:?set INIT}" --work_dir "$WORK" --rounds "${ROUNDS:-2}" --group_size 4 \
  --config_name "${CONFIG:-F5TTS_DPO_tiny}" -- "${overrides[@]}"
