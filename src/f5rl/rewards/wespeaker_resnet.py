"""WeSpeaker's ResNet speaker-embedding network, re-implemented with its parameter names so
released ``avg_model.pt`` files load (``shared/reference/wespeaker_resnet34_keys.tsv``), and its
front end: 16 kHz, int16 scale, 80-bin Kaldi fbank (25 ms / 10 ms, hamming, dither 0), per-
utterance mean subtraction.

Shapes: fbank ``(b, t, f)`` → ``(b, 1, f, t)`` image → ResNet → statistics pooling over time
(mean and unbiased std, TSTP) → ``seg_1`` linear → embedding ``(b, embed_dim)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)

RESNET_BLOCKS = {"ResNet18": [2, 2, 2, 2], "ResNet34": [3, 4, 6, 3]}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def tstp(x: Tensor) -> Tensor:
    """Temporal statistics pooling: mean and unbiased std over time, ``(b, c, f, t) -> (b, 2cf)``."""
    mean = x.mean(dim=-1).flatten(start_dim=1)
    std = torch.sqrt(torch.var(x, dim=-1) + 1e-7).flatten(start_dim=1)
    return torch.cat((mean, std), dim=1)


class WeSpeakerResNet(nn.Module):
    def __init__(self, num_blocks: list[int], m_channels: int = 32, feat_dim: int = 80, embed_dim: int = 256,
                 pooling_func: str = "TSTP", two_emb_layer: bool = False) -> None:
        super().__init__()
        if pooling_func != "TSTP":
            raise ValueError(f"pooling_func={pooling_func!r}: only TSTP (the released ResNet34) is implemented")
        if two_emb_layer:
            raise ValueError("two_emb_layer=true is not implemented (released ResNet34 models use false)")
        self.in_planes = m_channels
        stats_dim = int(feat_dim / 8) * m_channels * 8
        self.conv1 = nn.Conv2d(1, m_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = self._make_layer(m_channels, num_blocks[0], 1)
        self.layer2 = self._make_layer(m_channels * 2, num_blocks[1], 2)
        self.layer3 = self._make_layer(m_channels * 4, num_blocks[2], 2)
        self.layer4 = self._make_layer(m_channels * 8, num_blocks[3], 2)
        self.seg_1 = nn.Linear(stats_dim * 2, embed_dim)

    def _make_layer(self, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, feats: Tensor) -> Tensor:  # (b, t, f) -> (b, embed_dim)
        x = feats.permute(0, 2, 1).unsqueeze(1)  # (b, 1, f, t)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.seg_1(tstp(out))


def kaldi_fbank(audio_16k: np.ndarray, num_mel_bins: int = 80) -> Tensor:
    """WeSpeaker's features: int16-scaled audio, Kaldi fbank 25/10 ms hamming, dither 0, CMN."""
    try:
        import kaldi_native_fbank as knf
    except ImportError as err:
        raise ImportError("wespeaker_sim needs kaldi-native-fbank: pip install 'f5rl[wespeaker]'") from err
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.frame_length_ms = 25
    opts.frame_opts.frame_shift_ms = 10
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hamming"
    opts.mel_opts.num_bins = num_mel_bins
    opts.use_energy = False
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, (audio_16k.astype(np.float32) * (1 << 15)).tolist())
    fb.input_finished()
    if fb.num_frames_ready == 0:
        raise ValueError("audio too short for one 25 ms fbank frame")
    feats = torch.from_numpy(np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)]))
    return feats - feats.mean(dim=0, keepdim=True)


def load_wespeaker_model(model_dir: str | Path) -> WeSpeakerResNet:
    """Build from ``config.yaml`` (``model``, ``model_args``) and load ``avg_model.pt``,
    dropping training-head keys (e.g. ``projection.*``) with a log line."""
    import yaml

    folder = Path(model_dir)
    missing = [n for n in ("config.yaml", "avg_model.pt") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"WeSpeaker model_dir {folder} lacks {missing}; fetch it with "
            f"`python -m f5rl.scripts.fetch_reward_spk_model --cache_dir {folder.parent}`"
        )
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    name = cfg.get("model", "ResNet34")
    if name not in RESNET_BLOCKS:
        raise ValueError(f"{folder}/config.yaml: model {name!r} is not supported; use one of {list(RESNET_BLOCKS)}")
    args = dict(cfg.get("model_args", {}))
    model = WeSpeakerResNet(RESNET_BLOCKS[name], **{k: v for k, v in args.items()
                                                  if k in ("m_channels", "feat_dim", "embed_dim", "pooling_func",
                                                           "two_emb_layer")})
    state = torch.load(folder / "avg_model.pt", map_location="cpu", weights_only=True)
    own = model.state_dict()
    extra = sorted(k for k in state if k not in own)
    if extra:
        log.info("WeSpeaker checkpoint: dropping %d training-only keys (%s)", len(extra), ", ".join(extra[:4]))
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
    return model.eval()
