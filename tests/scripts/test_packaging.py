import subprocess
import sys
import zipfile

import pytest


@pytest.mark.slow
def test_wheel_ships_the_configs(tmp_path):
    """A non-editable install finds `-cn NAME` configs: they are package data in the wheel."""
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path),
                            str(root)], check=True, capture_output=True, text=True, timeout=300)
    wheel = next(tmp_path.glob("f5rl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for cfg in ("F5TTS_v1_Base", "F5TTS_Base", "F5TTS_v1_Small", "F5TTS_tiny_demo", "F5TTS_demo_base"):
        assert f"f5rl/configs/{cfg}.yaml" in names
    for f in ("model.safetensors", "config.yaml", "vocab.txt", "README.md",  # the demo base model
              "recipe.yaml", "card.md", "token_counts.json"):  # read at import / by the fallback and the card
        assert f"f5rl/assets/demo_base/{f}" in names
    # the phoneme inventory (tokenizer fallback), the free-text list (prepare_demo) and the base recipes
    for f in ("text/phonemes_en_us.txt", "text/free_text_en.txt", "recipes/demo_base_broad.yaml"):
        assert f"f5rl/assets/{f}" in names
    # the licence as an SPDX expression (PEP 639): setuptools stops building a TOML-table licence in 2027
    metadata = zipfile.ZipFile(wheel).read("f5rl-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "project.license` as a TOML table is deprecated" not in built.stdout + built.stderr
