"""f5rl: train F5-TTS-family flow-matching TTS models and align them with rewards."""

__version__ = "0.1.0"
