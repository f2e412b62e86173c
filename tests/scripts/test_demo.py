import json
import subprocess
import sys

import pytest


@pytest.mark.slow(seconds=83)
def test_quick_demo_runs_end_to_end_and_writes_what_it_promises(tmp_path):
    out, data = tmp_path / "ckpts" / "demo", tmp_path / "data" / "demo_char"
    cmd = [sys.executable, "-m", "f5rl.scripts.demo", "--quick", "--out", str(out), "--data", str(data)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (data / "raw").is_dir() and (data / "test.jsonl").is_file()
    assert not (out / "stage0_mse").exists()  # stage 1 starts from the shipped base model
    assert "model.tokenizer=phoneme" in proc.stdout and "demo_base/model.safetensors" in proc.stdout
    for stage in ("stage1_gaussian_nll", "stage2_grpo"):
        d = out / stage
        assert (d / "model_last.pt").is_file() and (d / "config.yaml").is_file()
        samples = sorted(p.name for p in (d / "samples").glob("*.wav"))
        assert samples and any(s.endswith("_gen.wav") for s in samples) and any(s.endswith("_ref.wav") for s in samples)
    assert (out / "loss_curves.png").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["stage1"]["updates"] == 6
    s2 = summary["results"]["stage2"]
    assert s2["updates"] == 2 and "val/mean_reward" in s2["val_before"] and "val/mean_reward" in s2["val_after"]
    assert "before GRPO" in (out / "summary.md").read_text()
    h = s2["held_out"]  # fresh samples of held-out sentences (template and free text), judged before and after
    assert h["items"] == 4 and h["cer"]["n"] == 4 and 0 <= h["cer"]["before"] <= 1 and 0 < h["sim"]["after"] <= 1
    assert "held-out sentences (half template, half free text" in (out / "summary.md").read_text()
    dpo = summary["results"]["stage3_dpo"]
    assert dpo["pairs"]["train"] >= 1 and (out / "stage3_dpo" / "iter_0" / "train" / "model_last.pt").is_file()
    assert "implicit accuracy on held-out pairs" in (out / "summary.md").read_text()
    assert dpo["held_out"]["n"] == 8  # 2 held-out sentences x 4 samples, generated before and after
    assert (out / "stage3_dpo" / "iter_0" / "held_out_after").is_dir()
    assert "(1 − CER) + SIM" in (out / "summary.md").read_text()
    assert any((out / "trackio").rglob("*"))
    assert "stage1" in (out / "summary.md").read_text()
    # each stage printed the command it ran: the printed line parses back to that stage's run
    import shlex

    from f5rl.config import compose, validate
    from f5rl.config.schema import RLTrainConfig
    from f5rl.prefs.iterate import parser

    printed = {ln[1:ln.index("]")]: ln[ln.index("] ") + 2:] for ln in proc.stdout.splitlines()
               if ln.startswith("[") and "] python -m f5rl." in ln}
    assert {"stage1", "stage2", "dpo"} <= set(printed)
    argv = shlex.split(printed["stage2"])
    assert argv[:3] == ["python", "-m", "f5rl.train.train_rl"] and argv[3] == "-cn"
    cfg = validate(compose(argv[4], argv[5:]), RLTrainConfig)
    assert cfg.ckpts.save_dir == s2["save_dir"] and cfg.optim.total_updates == 2
    # the recipe's synthesis prompts: train sentences in held-out voices, written before stage 2 ran
    assert cfg.rl.loss == "awm" and cfg.rl.prompts_manifest == str(out / "stage2_prompts.jsonl")
    assert len((out / "stage2_prompts.jsonl").read_text().splitlines()) == 3 * 4  # 3 sentences x 4 voices
    args = parser().parse_args(shlex.split(printed["dpo"])[3:])
    assert args.work_dir == str(out / "stage3_dpo") and "model.tokenizer=phoneme" in args.overrides
    # the implicit-accuracy checks use the demo's 8 draws (32 made them 290 s of a 27-min make demo)
    from omegaconf import OmegaConf

    assert "dpo.val_draws=8" in args.overrides
    assert OmegaConf.load(out / "stage3_dpo" / "iter_0" / "train" / "config.yaml").dpo.val_draws == 8
