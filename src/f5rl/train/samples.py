"""Audio samples logged while training stages 0/1 (F5-TTS's check)."""

from __future__ import annotations

from pathlib import Path

import torch

from f5rl.data.collate import Batch


@torch.no_grad()
def prompted_sample(model, batch: Batch, tokenizer, vocoder, folder: Path, update: int, steps: int,
                    cfg_strength: float, sample_from_dist: bool, precision: str, device) -> list[str]:
    """Re-synthesise the batch's first utterance with itself as the prompt: ``update_<N>_gen.wav``
    (the generated half) and ``update_<N>_ref.wav`` (the vocoded reference), in ``folder``."""
    from f5rl.audio.io import save_audio

    n = int(batch.mel_lengths[0])
    ref = batch.mel[:1, :n].float()
    text = tokenizer.encode([batch.texts[0] + " " + batch.texts[0]]).to(device)
    out = model.sample(ref, text, 2 * n, steps=steps, cfg_strength=cfg_strength, seed=update,
                       sample_from_dist=sample_from_dist, precision=precision)
    gen = out.generated(0).T.unsqueeze(0).cpu()  # (1, m, frames)
    paths = [save_audio(folder / f"update_{update}_gen.wav", vocoder(gen)[0]),
             save_audio(folder / f"update_{update}_ref.wav", vocoder(ref.transpose(1, 2).cpu())[0])]
    return [str(p) for p in paths]
