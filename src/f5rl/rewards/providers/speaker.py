"""Speaker-similarity rewards: cosine between embeddings of the output and the speaker reference.

* ``resemblyzer_sim`` (embedded default): the GE2E encoder whose 17 MB weights ship inside the
  ``resemblyzer`` PyPI package.
* ``wespeaker_sim``: WeSpeaker ResNet34 from a released ``model_dir`` (``config.yaml`` +
  ``avg_model.pt``), the F5R-TTS similarity reward.
"""

from __future__ import annotations

import abc

import torch
import torch.nn.functional as F

from f5rl.rewards.base import RewardBatch, RewardOutput, RewardProvider
from f5rl.rewards.registry import register


class SpeakerSimilarity(RewardProvider):
    components = ("cosine",)
    sample_rate = 16000

    @abc.abstractmethod
    def embed(self, clips) -> torch.Tensor:
        """Embeddings ``(b, d)`` of 16 kHz numpy clips."""

    def compute(self, batch: RewardBatch) -> RewardOutput:
        refs = batch.ref_resampled(self.sample_rate)
        missing = [i for i, r in enumerate(refs) if r is None]
        if missing:
            raise ValueError(f"{self.name} needs ref_audio for every sample (missing for {missing[:5]})")
        n = len(batch)
        emb = self.embed(list(batch.resampled(self.sample_rate)) + list(refs))
        cos = F.cosine_similarity(emb[:n], emb[n:], dim=-1).float().cpu()
        return RewardOutput(cos, {"cosine": cos})


@register("resemblyzer_sim")
class ResemblyzerSimilarity(SpeakerSimilarity):
    extra = "speaker"

    def setup(self, device="cpu") -> None:
        try:
            import resemblyzer
        except ImportError as err:
            raise ImportError("resemblyzer_sim needs resemblyzer: pip install 'f5rl[speaker]' && "
                              "pip install --no-deps resemblyzer") from err
        self.encoder = resemblyzer.VoiceEncoder(str(device), verbose=False)

    def embed(self, clips) -> torch.Tensor:
        # embed_utterance averages partial-window embeddings of one clip; clips differ in length
        return torch.stack([torch.from_numpy(self.encoder.embed_utterance(c.astype("float32"))) for c in clips])


@register("wespeaker_sim")
class WeSpeakerSimilarity(SpeakerSimilarity):
    extra = "wespeaker"

    def __init__(self, model_dir: str | None = None, **kw) -> None:
        super().__init__(**kw)
        if not model_dir:
            raise ValueError("wespeaker_sim needs model_dir, a folder with config.yaml and avg_model.pt (a reward's "
                             "config.model_dir; on a command line --sim_config model_dir=FOLDER)")
        self.model_dir = model_dir

    def setup(self, device="cpu") -> None:
        from f5rl.rewards.wespeaker_resnet import load_wespeaker_model

        self.torch_device = torch.device(device)
        self.model = load_wespeaker_model(self.model_dir).to(self.torch_device)

    @torch.no_grad()
    def embed(self, clips) -> torch.Tensor:
        from torch.nn.utils.rnn import pad_sequence

        from f5rl.rewards.wespeaker_resnet import kaldi_fbank

        feats = [kaldi_fbank(c) for c in clips]
        lens = {f.shape[0] for f in feats}
        if len(lens) == 1:  # equal lengths batch exactly; otherwise run one by one (pooling is per clip)
            return self.model(pad_sequence(feats, batch_first=True).to(self.torch_device)).cpu()
        return torch.cat([self.model(f.unsqueeze(0).to(self.torch_device)).cpu() for f in feats])
