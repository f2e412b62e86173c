#!/usr/bin/env bash
# The F5-TTS RL two-stage recipe from the released F5TTS_v1_Base checkpoint, on this machine's GPUs:
# prepare the data, stage 1 (Gaussian-NLL warmup of the σ head), stage 2 (GRPO over ODE rollouts, with
# FunASR WER and WeSpeaker SIM rewards). Every path is a variable; --dry-run prints the commands only.
#   CORPUS=my_corpus/ NAME=mini_rl VOCAB=data/Emilia_ZH_EN_pinyin/vocab.txt \
#   RELEASED=model_1250000.safetensors bash scripts/two_stage_gpu.sh [--dry-run]
set -euo pipefail
source "$(dirname "$0")/_common.sh"
CORPUS=${CORPUS:-my_corpus/}
NAME=${NAME:-mini_rl}
VOCAB=${VOCAB:-data/Emilia_ZH_EN_pinyin/vocab.txt}
RELEASED=${RELEASED:-ckpts/F5TTS_v1_Base/model_1250000.safetensors}
ASR=${ASR:-checkpoints/funasr/SenseVoiceSmall}
SPK=${SPK:-checkpoints/wespeaker/cnceleb_resnet34}
LAUNCH=${LAUNCH:-accelerate launch}  # e.g. "accelerate launch --multi_gpu --num_processes 8"
WARMUP=ckpts/${NAME}_warmup
GRPO=ckpts/${NAME}_grpo
COMMON=(datasets.name="$NAME" datasets.batch_size_type=sample datasets.num_workers=4
        model.tokenizer=custom model.tokenizer_path="$VOCAB" model.output_dist=gaussian model.use_rl_head=true
        optim.epochs=1 optim.num_warmup_updates=0 optim.grad_accumulation_steps=1
        ckpts.keep_last_n_checkpoints=0 ckpts.log_samples=false)

run $PY -m f5rl.data.prepare --input "$CORPUS" --name "$NAME" --tokenizer custom --vocab "$VOCAB"
run $PY -m f5rl.scripts.fetch_reward_asr_model --cache_dir "$ASR"
run $PY -m f5rl.scripts.fetch_reward_spk_model --cache_dir "$SPK"
run mkdir -p "$WARMUP" "$GRPO"
run cp "$RELEASED" "$WARMUP/pretrained_$(basename "$RELEASED")"
# shellcheck disable=SC2086
run $LAUNCH -m f5rl.train.train -cn F5TTS_v1_Base "${COMMON[@]}" datasets.batch_size_per_gpu=2 \
  model.objective=gaussian_nll model.sample_from_dist=false optim.learning_rate=1e-5 \
  ckpts.save_dir="$WARMUP" ckpts.save_per_updates=1000 ckpts.logger=wandb
# stage 2 starts from stage 1's weights (a pretrained_* file: fresh optimiser and schedule)
run cp "$WARMUP/model_last.pt" "$GRPO/pretrained_warmup.pt"
# shellcheck disable=SC2086
run $LAUNCH -m f5rl.train.train_rl -cn F5TTS_RL "${COMMON[@]}" datasets.batch_size_per_gpu=1 \
  model.objective=grpo optim.learning_rate=1e-6 ckpts.save_dir="$GRPO" ckpts.save_per_updates=1000 \
  ckpts.logger=wandb rl.steps=30 rl.group_size=4 rl.kl_weight=1.0 rl.ref_model_ckpt="$WARMUP/model_last.pt" \
  rl.rewards.providers.0.config.model_dir="$SPK/cnceleb_resnet34" rl.rewards.providers.1.config.model_id="$ASR"
