"""The stage-2 command of the F5-TTS RL recipe, package renamed, runs unchanged given the files
it names: a warm-up checkpoint of the released F5TTS_v1_Base architecture (random weights), a
WeSpeaker model dir and a FunASR SenseVoice dir (tiny random models in the released layouts)."""

import os
import shutil
import subprocess
import sys

import pytest
import soundfile as sf
import torch

from f5rl.data.prepare import Row, write_dataset
from f5rl.text.vocab import write_vocab
from tests.conftest import reference_keys, speech_like
from tests.rewards.helpers import write_tiny_sensevoice, write_wespeaker_dir

COMMAND = """python -m f5rl.train.train_rl \
  datasets.name=mini_rl datasets.batch_size_per_gpu=1 datasets.batch_size_type=sample datasets.num_workers=2 \
  model.tokenizer=custom model.tokenizer_path=$PWD/data/Emilia_ZH_EN_pinyin/vocab.txt \
  model.output_dist=gaussian model.objective=grpo model.use_rl_head=true model.arch.checkpoint_activations=false \
  optim.epochs=1 optim.learning_rate=1e-6 optim.num_warmup_updates=0 optim.grad_accumulation_steps=1 optim.bnb_optimizer=true \
  ckpts.save_dir=ckpts/mini_rl_grpo ckpts.save_per_updates=1000 ckpts.keep_last_n_checkpoints=0 ckpts.log_samples=false ckpts.logger=wandb \
  rl.steps=30 rl.repeat_count=1 rl.mini_repeat_count=1 rl.prompt_frac_range='[0.1,0.3]' rl.prompt_length_mode=min \
  rl.cfg_strength=2.0 rl.sway_sampling_coef=-1.0 rl.kl_weight=1.0 \
  rl.ref_model_ckpt=$PWD/ckpts/mini_rl_warmup/model_last.pt \
  rl.rewards.providers.0.config.model_dir=$PWD/checkpoints/wespeaker/cnceleb_resnet34/cnceleb_resnet34 \
  rl.rewards.providers.0.config.device=cpu \
  rl.rewards.providers.1.config.model_id=$PWD/checkpoints/funasr/SenseVoiceSmall \
  rl.rewards.providers.1.config.device=cpu"""


@pytest.mark.slow(seconds=143)
def test_stage2_recipe_runs_unchanged(tmp_path):
    pytest.importorskip("wandb", reason="the recipe logs to wandb (offline here)")
    pytest.importorskip("funasr", reason="funasr extra not installed")
    vocab = tmp_path / "data" / "Emilia_ZH_EN_pinyin" / "vocab.txt"
    write_vocab(vocab, [" ", *"abcdefghijklmnopqrstuvwxyz.,!?'", *[f"tok{i}" for i in range(2545 - 32)]])
    sf.write(tmp_path / "u0.wav", speech_like(1.0, seed=0), 24000)
    write_dataset([Row(str(tmp_path / "u0.wav"), "a cat sat on the mat.", 1.0)], tmp_path / "data" / "mini_rl_custom",
                  "custom", vocab_from=str(vocab))
    write_wespeaker_dir(tmp_path / "checkpoints/wespeaker/cnceleb_resnet34/cnceleb_resnet34",
                        reference_keys("wespeaker_resnet34_keys.tsv"))
    write_tiny_sensevoice(tmp_path / "checkpoints/funasr/SenseVoiceSmall")
    warm = tmp_path / "ckpts" / "mini_rl_warmup"
    warm.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    ema = {"initted": torch.tensor([True]), "step": torch.tensor([10])}
    for key, shape in reference_keys("f5tts_v1_base_keys.tsv").items():
        if key.startswith("ema_model."):
            ema[key] = torch.randn(shape, generator=gen) * 0.02
    ema["ema_model.transformer.proj_out_ln_sig.weight"] = torch.zeros(100, 1024)
    ema["ema_model.transformer.proj_out_ln_sig.bias"] = torch.zeros(100)
    torch.save({"ema_model_state_dict": ema, "update": 10}, warm / "model_last.pt")
    del ema

    # the default vocoder (Vocos) as a user's offline Hugging Face cache holds it (random weights)
    from f5rl.audio.vocos import Vocos
    from tests.audio.test_vocos import _write_release

    snap = tmp_path / "hf" / "hub" / "models--charactr--vocos-mel-24khz" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    _write_release(snap, Vocos())
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("0" * 40)

    # the README's hand-off: mkdir -p ckpts/mini_rl_grpo; cp ckpts/mini_rl_warmup/model_last.pt ckpts/mini_rl_grpo/
    save = tmp_path / "ckpts" / "mini_rl_grpo"
    save.mkdir(parents=True)
    shutil.copy(warm / "model_last.pt", save / "model_last.pt")
    argv = COMMAND.replace("$PWD", str(tmp_path)).replace("\\\n", " ").replace("'", "").split()
    argv[0] = sys.executable
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_SILENT="true",
               HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=1500, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # a new run from the copied weights (update 0 -> 1, not the warm-up's 10 -> 11); the copy is kept
    assert sorted(p.name for p in save.glob("*.pt")) == ["model_last.pt", "model_start.pt"]
    ckpt = torch.load(save / "model_last.pt", map_location="cpu", weights_only=True, mmap=True)
    assert ckpt["update"] == 1 and ckpt["run_kind"] == {"trainer": "rl", "objective": "grpo"}
    assert ckpt["model_state_dict"]["transformer.proj_out_ln_sig.weight"].shape == (100, 1024)
    logs = proc.stdout + proc.stderr
    assert "reference model: " in logs and "mini_rl_warmup/model_last.pt" in logs
    assert "holds weights only" in logs and "kept model_last.pt as model_start.pt" in logs
