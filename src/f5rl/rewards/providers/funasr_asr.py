"""``funasr_wer``: FunASR ``AutoModel`` transcription reward (SenseVoiceSmall by default, the
F5R-TTS ASR reward).

``model_id`` is a local model folder (``config.yaml``, ``model.pt``, tokenizer, ``am.mvn``) or a
hub id (``iic/SenseVoiceSmall`` on ModelScope, ``FunAudioLLM/SenseVoiceSmall`` with
``hub=hf``); offline, a hub id fails fast and names the fetch script. Feature dither is switched
off so the same audio always gets the same transcript.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from f5rl.rewards.base import require
from f5rl.rewards.providers.asr import ASRReward
from f5rl.rewards.registry import register

FETCH_HINT = "python -m f5rl.scripts.fetch_reward_asr_model --cache_dir checkpoints/funasr/SenseVoiceSmall"


def import_funasr():
    """``import funasr``, leaving ``HYDRA_FULL_ERROR`` as it was: funasr's ``__init__`` sets it to 1 in
    ``os.environ``, which would turn the one-line errors of every later f5rl command in this process, and in
    the processes it starts, into tracebacks (f5rl.utils.cli.one_line_errors)."""
    before = os.environ.get("HYDRA_FULL_ERROR")
    try:
        return require("funasr", "funasr")
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before


@register("funasr_wer")
class FunASRReward(ASRReward):
    extra = "funasr"

    def __init__(self, model_id: str = "iic/SenseVoiceSmall", hub: str = "ms", use_itn: bool = False,
                 batch_size: int = 16, **kw) -> None:
        super().__init__(**kw)
        self.model_id, self.hub, self.use_itn, self.batch_size = model_id, hub, use_itn, batch_size

    def setup(self, device="cpu") -> None:
        local = Path(self.model_id).expanduser()
        # a path (absolute, ./ ../ ~), not a hub id like iic/SenseVoiceSmall: it must exist, checked
        # before importing FunASR (seconds) so a typo fails at once
        if str(self.model_id).startswith(("/", "./", "../", "~")) and not local.is_dir():
            raise FileNotFoundError(f"funasr_wer: model folder {local} does not exist; fetch the model with "
                                    f"`{FETCH_HINT}` or fix config.model_id")
        funasr = import_funasr()
        if not local.is_dir():
            if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("MODELSCOPE_OFFLINE") == "1":
                raise RuntimeError(f"funasr_wer: {self.model_id!r} is not a local folder and the hub is offline; "
                                   f"fetch it with `{FETCH_HINT}` and pass config.model_id=<that folder>")
        elif not (local / "config.yaml").is_file():
            raise FileNotFoundError(f"funasr_wer: {local} has no config.yaml; fetch the model with `{FETCH_HINT}`")
        try:
            self.model = funasr.AutoModel(model=str(local) if local.is_dir() else self.model_id, hub=self.hub,
                                          device=str(device), disable_update=True, disable_pbar=True, log_level="ERROR",
                                          ncpu=torch.get_num_threads())
        except Exception as err:  # hub/network errors surface as many types
            raise RuntimeError(f"funasr_wer: could not load {self.model_id!r} ({err}); fetch it with `{FETCH_HINT}`") \
                from err
        frontend = self.model.kwargs.get("frontend")
        if frontend is not None and hasattr(frontend, "dither"):
            frontend.dither = 0.0  # deterministic features: dithering adds random noise per call

    def transcribe(self, clips: list[np.ndarray], languages: list[str]) -> list[str]:
        from funasr.utils.postprocess_utils import rich_transcription_postprocess

        out = [""] * len(clips)
        for lang in sorted(set(languages)):
            idx = [i for i, lg in enumerate(languages) if lg == lang]
            res = self.model.generate(input=[clips[i].astype(np.float32) for i in idx], cache={}, language=lang,
                                      use_itn=self.use_itn, batch_size=self.batch_size, disable_pbar=True)
            for i, r in zip(idx, res):
                out[i] = rich_transcription_postprocess(r.get("text", ""))
        return out
