"""A hand-made ``prefs.iterate`` round (two scored samples of one text, one pair) for the page's tests."""

import json

import soundfile as sf

from tests.conftest import speech_like


def make_prefs_round(round_dir):
    """``round_dir/{generated,pairs}`` as ``prefs.iterate`` writes them; returns the generated folder."""
    gen = round_dir / "generated"
    gen.mkdir(parents=True)
    rows = []
    for s, cer in enumerate((0.1, 0.6)):
        sf.write(gen / f"g0_s{s}.wav", speech_like(1.0 + 0.5 * s, seed=s), 24000)
        rows.append({"id": f"g0_s{s}", "text": "hello", "cer": cer, "wer": cer, "sim": 0.8, "duration": 1.0,
                     "transcript": "h", "audio_path": f"g0_s{s}.wav"})
        (gen / f"g0_s{s}.json").write_text(json.dumps(rows[-1]))
    (round_dir / "pairs").mkdir()
    # the pair file names clips as the generating run saw them (relative to its working directory)
    pair = {"group": "g0", "chosen": {**rows[0], "audio_path": "elsewhere/g0_s0.wav"},
            "rejected": {**rows[1], "audio_path": "elsewhere/g0_s1.wav"}}
    (round_dir / "pairs" / "train.jsonl").write_text(json.dumps(pair) + "\n")
    return gen
