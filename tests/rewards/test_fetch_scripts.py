import subprocess
import sys
import time

import pytest


@pytest.mark.parametrize("module, files", [
    ("fetch_reward_asr_model", ["config.yaml", "model.pt", "am.mvn", "chn_jpn_yue_eng_ko_spectok.bpe.model"]),
    ("fetch_reward_spk_model", ["config.yaml", "avg_model.pt"]),
])
def test_fetch_scripts_offline(tmp_path, module, files):
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", f"f5rl.scripts.{module}", "--cache_dir", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=60, env=env)
    print(f"{module} failed offline in {time.perf_counter() - t0:.1f} s")  # measured, not asserted
    assert proc.returncode != 0
    assert "offline" in proc.stderr and files[0] in proc.stderr and "huggingface.co" in proc.stderr
    # --offline verifies a complete local copy
    folder = tmp_path / "c" if module.endswith("asr_model") else tmp_path / "c" / "cnceleb_resnet34"
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f).write_bytes(b"x")
    proc = subprocess.run([sys.executable, "-m", f"f5rl.scripts.{module}", "--cache_dir", str(tmp_path / "c"),
                           "--offline"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0 and "complete" in proc.stdout
