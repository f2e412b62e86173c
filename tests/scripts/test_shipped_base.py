"""DPO from the shipped demo base model (issue 6): measured, not assumed. The base model's own report is in
``test_shipped_base_speaks.py``, so that it runs on the other worker."""

import pytest

# The DPO round: 4 samples per sentence (voices of held-out utterances) for 64 train sentences (pairs)
# and 48 held-out sentences (held-out pairs, and the fresh samples scored before and after, same seeds);
# the F5TTS_DPO_tiny recipe (t in [0, 0.1], CFM on the chosen weighted 100, the reference drift at t in [0.1, 1]
# weighted 100, lr 1e-4) for 120 updates.
# Sampled at 8 NFE: the shipped base's CER is the same as at 16 (0.389 against 0.395 on 24 held-out
# samples) at 2.10 s instead of 3.10 s per scored sample, which keeps this round inside CI's budget.
# With 30 held-out sentences the change was +0.023 ± 0.018: too close to 0 for a test that must not flake.
# The implicit accuracies (held-out pairs before and after, training pairs after) average each pair's flow
# errors over VAL_DRAWS (noise, t) draws instead of the recipe's 32: this test only prints them or needs the
# fitted training pairs above 0.8. With 8 draws the round's phases took (rounds.json `seconds`, dev machine)
# generate 283 s, held-out before 215, train 159, implicit accuracies 138, held-out after 231; the test took
# 1067 s against 1336 s with 32 draws, with the same pairs (49/40), fit (1.00) and fresh-sample change.
TRAIN_GROUPS, HELD_OUT_GROUPS, UPDATES, NFE, VAL_DRAWS = 64, 48, 120, 8, 8
# One generation process (no `--gen_processes`): `make test`'s other worker holds the other core, and beside a
# one-thread job two one-thread generation processes were slower than one (32 rows at 8 NFE on the 2-core AVX2
# machine: 98.6 s against 86.6 s); a one-thread process already overlaps its scoring with its synthesis.


@pytest.fixture(scope="module")
def dpo_round(tmp_path_factory, standard_demo_corpus):
    """One offline DPO round from the shipped base, run as a user runs it: ``python -m f5rl.prefs.iterate``
    in its own process (bf16 autocast where the machine has it), rewards from Whisper CER and resemblyzer
    SIM; its ``rounds.json`` is the result."""
    import json
    import subprocess
    import sys

    from f5rl.eval.base_model import SHIPPED, base_overrides
    from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl

    tmp = tmp_path_factory.mktemp("dpo")
    data = standard_demo_corpus
    manifest = write_jsonl(demo_rows(data, groups=TRAIN_GROUPS, nsamples=4, split="train"), tmp / "pairs.jsonl")
    held_out = write_jsonl(demo_rows(data, groups=HELD_OUT_GROUPS, nsamples=4, seed=99), tmp / "held_out.jsonl")
    cmd = [sys.executable, "-m", "f5rl.prefs.iterate", "--manifest", str(manifest), "--val_manifest", str(held_out),
           "--init_ckpt", str(SHIPPED / "model.safetensors"), "--work_dir", str(tmp / "work"), "--rounds", "1",
           "--group_size", "4", "--nfe", str(NFE), "--", *base_overrides(SHIPPED), f"datasets.path={data}",
           "ckpts.logger=null", f"optim.max_updates={UPDATES}", f"dpo.val_draws={VAL_DRAWS}"]
    subprocess.run(cmd, check=True)
    r = json.loads((tmp / "work" / "rounds.json").read_text())[0]
    out = {"pairs": r["pairs"], "acc_before": r["val_before"]["val/dpo/accuracy"],
           "acc_after": r["val_after"]["val/dpo/accuracy"], "margin_after": r["val_after"]["val/dpo/margin"],
           "fit_after": r["fit"]["fit/dpo/accuracy"], "held_out": r["held_out"], "ckpt": r["ckpt"],
           "seconds": r["seconds"]}
    print(out)
    return out


@pytest.mark.slow(seconds=1067)
def test_dpo_from_the_shipped_base_fits_its_pairs_and_raises_the_held_out_reward(dpo_round):
    """Issue 6 on the shipped base: DPO moves the policy toward the chosen samples (implicit accuracy on
    its training pairs above 0.5) and the mean reward (1 - CER) + SIM of fresh samples on held-out
    sentences rises. Measured on the 2-core dev machine (benchmarks/bench_dpo.py, same round): 60 train /
    43 held-out pairs, accuracy 0 -> 0.674, fresh reward 1.4852 -> 1.5209 (change +0.0357 ± 0.0141 over
    60 sentence groups, 240 samples), CER 0.351 -> 0.307, SIM 0.836 -> 0.828. SIM falls a little in every
    setting tried: the pairs are ranked by CER first. This test's round (8 NFE, 64/48 groups), three runs:
    fresh reward change +0.0513 ± 0.0163, +0.0561 ± 0.0153 (CI), +0.0413 ± 0.0176 (n=192 each; CER
    0.366 -> 0.307, 0.373 -> 0.310, 0.363 -> 0.311).

    The implicit accuracy on the ~40 held-out pairs is printed, not asserted: the pairs differ between
    machines (43/40, 47/38 in CI, 49/40 twice on the dev machine: train/held-out pairs), and the three
    rounds measured 0.70, 0.47 (CI) and 0.55 — a fraction of 40 pairs has a standard error near 0.08, so
    "above 0.5" failed one run in three while the fresh samples improved by 2.3-3.7 standard errors. The
    training pairs: all 49 fitted (1.00) on the dev machine."""
    d, h = dpo_round, dpo_round["held_out"]
    assert d["pairs"]["train"] >= 40 and d["pairs"]["val"] >= 28, d["pairs"]  # pairs from real rewards
    assert d["acc_before"] == 0.5  # policy == reference: every margin is exactly 0, a tie counts half
    print(f"held-out implicit accuracy 0.5 -> {d['acc_after']:.3f} (margin {d['margin_after']:+.3f}); "
          f"training pairs {d['fit_after']:.3f}")
    assert d["fit_after"] > 0.8, d  # trained toward the chosen sample of its own pairs
    assert h["n"] == 4 * HELD_OUT_GROUPS
    assert h["change"] > 0.0, h  # paired by seed; its standard error is in h["change_se"]
