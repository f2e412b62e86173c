"""In-tree reward providers. Importing this package is cheap: every heavy dependency is
imported inside a provider's ``setup()``."""

from f5rl.rewards.providers import funasr_asr, remote, simple, speaker, whisper  # noqa: F401
