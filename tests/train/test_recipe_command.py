"""The stage-1 command of the F5-TTS RL recipe, package renamed, runs unchanged on the released
F5TTS_v1_Base architecture (random weights in the released file layout)."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from f5rl.data.prepare import Row, write_dataset
from f5rl.text.vocab import write_vocab
from tests.conftest import reference_keys, speech_like
from tests.model.test_checkpoint import _random_release

COMMAND = """python -m f5rl.train.train -cn F5TTS_v1_Base \
  datasets.name=mini_rl datasets.batch_size_per_gpu=2 datasets.batch_size_type=sample datasets.num_workers=2 \
  model.tokenizer=custom model.tokenizer_path=$PWD/data/Emilia_ZH_EN_pinyin/vocab.txt \
  model.output_dist=gaussian model.objective=gaussian_nll model.sample_from_dist=false model.use_rl_head=true \
  model.arch.checkpoint_activations=false \
  optim.epochs=1 optim.learning_rate=1e-5 optim.num_warmup_updates=0 optim.grad_accumulation_steps=1 optim.bnb_optimizer=false \
  ckpts.save_dir=ckpts/mini_rl_warmup ckpts.save_per_updates=1000 ckpts.keep_last_n_checkpoints=0 ckpts.log_samples=false ckpts.logger=null"""


@pytest.mark.slow(seconds=74)
def test_stage1_recipe_runs_unchanged(tmp_path):
    # the released pinyin vocab has 2545 tokens; a stand-in with the same size and a space first
    vocab = tmp_path / "data" / "Emilia_ZH_EN_pinyin" / "vocab.txt"
    write_vocab(vocab, [" ", *"abcdefghijklmnopqrstuvwxyz.,!?'", *[f"tok{i}" for i in range(2545 - 32)]])
    assert len(vocab.read_text().splitlines()) == 2545
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    rows = []
    for i, text in enumerate(["a cat sat.", "hello world"]):
        sf.write(wavs / f"{i}.wav", speech_like(0.6, seed=i), 24000)
        rows.append(Row(str(wavs / f"{i}.wav"), text, 0.6))
    write_dataset(rows, tmp_path / "data" / "mini_rl_custom", "custom", vocab_from=str(vocab))
    save = tmp_path / "ckpts" / "mini_rl_warmup"
    save.mkdir(parents=True)
    _random_release(save / "pretrained_model_1250000.safetensors", reference_keys("f5tts_v1_base_keys.tsv"))

    argv = COMMAND.replace("$PWD", str(tmp_path)).replace("\\\n", " ").split()
    argv[0] = sys.executable
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "pretrained_model_1250000.safetensors" in proc.stderr + proc.stdout
    assert sorted(p.name for p in save.glob("*.pt")) == ["model_last.pt"]  # keep_last_n_checkpoints=0
    ckpt = torch.load(save / "model_last.pt", map_location="cpu", weights_only=True, mmap=True)
    assert ckpt["update"] == 1
    state = ckpt["model_state_dict"]
    assert state["transformer.text_embed.text_embed.weight"].shape == (2546, 512)
    assert state["transformer.proj_out_ln_sig.weight"].shape == (100, 1024)
    assert np.isfinite(state["transformer.proj_out.weight"].float().numpy()).all()
