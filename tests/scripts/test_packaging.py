import subprocess
import sys
import zipfile

import pytest


@pytest.mark.slow
def test_wheel_ships_the_configs(tmp_path):
    """A non-editable install finds `-cn NAME` configs: they are package data in the wheel."""
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path),
                    str(root)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("f5rl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for cfg in ("F5TTS_v1_Base", "F5TTS_Base", "F5TTS_v1_Small", "F5TTS_tiny_demo", "F5TTS_demo_base"):
        assert f"f5rl/configs/{cfg}.yaml" in names
    for f in ("model.safetensors", "config.yaml", "vocab.txt", "README.md"):  # the demo base model
        assert f"f5rl/assets/demo_base/{f}" in names
