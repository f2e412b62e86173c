"""Listen and compare: a web page (Gradio, the ``app`` extra) to hear checkpoints side by side and to
browse what ``evaluate`` and ``prefs.iterate`` wrote. Start it with ``python -m f5rl.app``."""
