"""The mel-24kHz Vocos vocoder (Siuzdak 2023), re-implemented so torchaudio is not needed.

Parameter names equal the released ``charactr/vocos-mel-24khz`` ``pytorch_model.bin``
(``shared/reference/vocos_mel_24khz_keys.tsv``): a ConvNeXt backbone and an ISTFT head that
predicts log-magnitude and phase of a 1024-point STFT with hop 256.

Shapes: mel ``(b, d, n)`` → hidden ``(b, n, c)`` → audio ``(b, s)``, ``s = (n - 1) * hop``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

VOCOS_HUB_ID = "charactr/vocos-mel-24khz"


@dataclass(frozen=True)
class VocosConfig:
    input_channels: int = 100
    dim: int = 512
    intermediate_dim: int = 1536
    num_layers: int = 8
    n_fft: int = 1024
    hop_length: int = 256


class ConvNeXtBlock(nn.Module):
    """Vocos ConvNeXt block with layer scale ``gamma`` (inputs and outputs ``(b, c, n)``)."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        residual = x
        x = self.dwconv(x).transpose(1, 2)  # (b, n, c)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        return residual + (self.gamma * x).transpose(1, 2)


class VocosBackbone(nn.Module):
    def __init__(self, c: VocosConfig) -> None:
        super().__init__()
        self.embed = nn.Conv1d(c.input_channels, c.dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        scale = 1.0 / c.num_layers
        self.convnext = nn.ModuleList(
            [ConvNeXtBlock(c.dim, c.intermediate_dim, scale) for _ in range(c.num_layers)]
        )
        self.final_layer_norm = nn.LayerNorm(c.dim, eps=1e-6)

    def forward(self, mel: Tensor) -> Tensor:
        x = self.embed(mel)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))  # (b, n, c)


class ISTFT(nn.Module):
    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, spec: Tensor) -> Tensor:
        return torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window, center=True)


class ISTFTHead(nn.Module):
    def __init__(self, c: VocosConfig) -> None:
        super().__init__()
        self.out = nn.Linear(c.dim, c.n_fft + 2)
        self.istft = ISTFT(c.n_fft, c.hop_length)

    def forward(self, x: Tensor) -> Tensor:
        x = self.out(x).transpose(1, 2).float()  # (b, n_fft + 2, n)
        log_mag, phase = x.chunk(2, dim=1)
        mag = torch.clip(torch.exp(log_mag), max=1e2)  # as released: caps rare explosions
        return self.istft(torch.polar(mag, phase))


class Vocos(nn.Module):
    """``forward(log_mel (b, d, n)) -> audio (b, s)``."""

    def __init__(self, config: VocosConfig | None = None) -> None:
        super().__init__()
        self.config = config or VocosConfig()
        self.backbone = VocosBackbone(self.config)
        self.head = ISTFTHead(self.config)

    @torch.no_grad()
    def forward(self, mel: Tensor) -> Tensor:
        if mel.ndim == 2:
            mel = mel.unsqueeze(0)
        return self.head(self.backbone(mel.float())).clamp(-1.0, 1.0)

    def load_released_state_dict(self, state: dict[str, Tensor]) -> None:
        """Strict load of a released ``pytorch_model.bin`` (the mel front-end buffers are ignored)."""
        state = {k: v for k, v in state.items() if not k.startswith("feature_extractor.")}
        self.load_state_dict(state, strict=True)

    @classmethod
    def from_pretrained(cls, source: str | Path = f"hf://{VOCOS_HUB_ID}") -> Vocos:
        """Load from a local directory (``config.yaml`` + ``pytorch_model.bin``) or an ``hf://`` id."""
        folder = resolve_model_dir(str(source), ("config.yaml", "pytorch_model.bin"))
        config = _read_vocos_config(folder / "config.yaml")
        model = cls(config)
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        model.load_released_state_dict(state)
        return model.eval()


def _read_vocos_config(path: Path) -> VocosConfig:
    import yaml

    cfg = yaml.safe_load(path.read_text())
    try:
        bb = cfg["backbone"]["init_args"]
        head = cfg["head"]["init_args"]
        return VocosConfig(
            input_channels=bb["input_channels"], dim=bb["dim"], intermediate_dim=bb["intermediate_dim"],
            num_layers=bb["num_layers"], n_fft=head["n_fft"], hop_length=head["hop_length"],
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a Vocos config.yaml (missing {err})") from err


def resolve_model_dir(source: str, required: tuple[str, ...]) -> Path:
    """A local folder holding ``required`` files, downloading ``hf://owner/name`` when online.

    Offline (or without the hub client) this fails fast, naming what to fetch and where to put it.
    """
    if source.startswith("hf://"):
        repo_id = source[len("hf://"):]
        try:
            from huggingface_hub import hf_hub_download
        except ImportError as err:
            raise ImportError("loading hf:// models needs huggingface_hub: pip install huggingface_hub") from err
        try:
            paths = [Path(hf_hub_download(repo_id, name)) for name in required]
        except Exception as err:  # network, auth or offline-mode errors from the hub client
            raise RuntimeError(
                f"could not fetch {list(required)} of {repo_id!r} from the Hugging Face hub ({err}). "
                f"Offline: download them elsewhere and pass the local folder instead of {source!r}."
            ) from err
        return paths[0].parent
    folder = Path(source).expanduser()
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"model folder {folder} lacks {missing}; put the released files there or pass an hf://owner/name id"
        )
    return folder
