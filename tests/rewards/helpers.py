"""Builders of tiny, randomly initialised reward models in their released on-disk layouts."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml


def write_tiny_sensevoice(folder: Path) -> Path:
    """A SenseVoiceSmall built by funasr's own classes (2 tiny blocks, a 64-piece BPE), saved as a
    local model dir: config.yaml, model.pt, am.mvn, bpe.model."""
    import sentencepiece as spm
    from funasr.models.sense_voice.model import SenseVoiceSmall

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(["the quick brown fox jumps over the lazy dog", "a cat sat on the mat",
                                  "hello world this is a test of speech", "please bring the red book"] * 20))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(folder / "bpe"), vocab_size=64,
                                   model_type="bpe", character_coverage=1.0, minloglevel=2)
    corpus.unlink()
    dim = 80 * 7
    (folder / "am.mvn").write_text(
        "<Nnet>\n<Splice> 560 560\n[ 0 ]\n<AddShift> 560 560\n<LearnRateCoef> 0 [ " + " ".join(["-8.0"] * dim)
        + " ]\n<Rescale> 560 560\n<LearnRateCoef> 0 [ " + " ".join(["0.25"] * dim) + " ]\n</Nnet>\n"
    )
    encoder_conf = {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 2, "tp_blocks": 1,
                    "dropout_rate": 0.0, "positional_dropout_rate": 0.0, "attention_dropout_rate": 0.0,
                    "input_layer": "pe", "pos_enc_class": "SinusoidalPositionEncoder", "normalize_before": True,
                    "kernel_size": 11, "sanm_shfit": 0, "selfattention_layer_type": "sanm"}
    config = {
        "model": "SenseVoiceSmall", "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "encoder": "SenseVoiceEncoderSmall", "encoder_conf": encoder_conf, "input_size": dim,
        "tokenizer": "SentencepiecesTokenizer", "tokenizer_conf": {"bpemodel": str(folder / "bpe.model"),
                                                                   "unk_symbol": "<unk>", "split_with_space": True},
        "frontend": "WavFrontend",
        "frontend_conf": {"fs": 16000, "window": "hamming", "n_mels": 80, "frame_length": 25, "frame_shift": 10,
                          "lfr_m": 7, "lfr_n": 6, "cmvn_file": str(folder / "am.mvn")},
        "ctc_conf": {"dropout_rate": 0.0, "ctc_type": "builtin", "reduce": True, "ignore_nan_grad": True},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(0)
    model = SenseVoiceSmall(encoder="SenseVoiceEncoderSmall", encoder_conf=encoder_conf, input_size=dim,
                            vocab_size=64, ctc_conf=config["ctc_conf"], **config["model_conf"])
    torch.save(model.state_dict(), folder / "model.pt")
    return folder


def write_wespeaker_dir(folder: Path, keys: dict[str, tuple[int, ...]], extra_head: bool = True) -> dict:
    """``config.yaml`` + ``avg_model.pt`` with exactly ``keys`` (random values) plus a training head."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    state = {}
    for k, shape in keys.items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(0)
        elif k.endswith("running_var"):
            state[k] = torch.rand(shape, generator=gen) + 0.5
        elif k.endswith("running_mean"):
            state[k] = torch.randn(shape, generator=gen) * 0.1
        else:
            state[k] = torch.randn(shape, generator=gen) * 0.05 + (1.0 if k.endswith("bn1.weight") else 0.0)
    if extra_head:
        state["projection.weight"] = torch.randn(100, 256, generator=gen)
    torch.save(state, folder / "avg_model.pt")
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "model": "ResNet34", "model_args": {"feat_dim": 80, "embed_dim": 256, "pooling_func": "TSTP",
                                           "two_emb_layer": False},
        "projection_args": {"project_type": "softmax", "embed_dim": 256, "num_class": 100},
    }))
    return state
