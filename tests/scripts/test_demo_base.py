import json

import pytest

from tests.conftest import tiny_train_config


@pytest.fixture(scope="module")
def phoneme_run(tmp_path_factory, demo_corpus):
    """Two updates of a tiny phoneme-token, average-upsampled DiT: the demo-base recipe in miniature."""
    pytest.importorskip("piper", reason="piper (the demo extra) synthesises the demo corpus")
    from f5rl.train.trainer import Trainer

    run = tmp_path_factory.mktemp("base") / "run"
    cfg = tiny_train_config(run, demo_corpus, "optim.max_updates=2", "model.tokenizer=phoneme",
                            f"model.tokenizer_path={demo_corpus / 'vocab_phoneme.txt'}",
                            "model.arch.text_embedding_average_upsampling=true", "ckpts.log_every=1")
    t = Trainer(cfg)
    t.setup()
    t.train()
    return run


def test_corpus_has_a_phoneme_vocab_covering_held_out_text(demo_corpus):
    pytest.importorskip("piper", reason="piper (the demo extra) synthesises the demo corpus")
    from f5rl.text.tokenizer import build_tokenizer

    tok = build_tokenizer("phoneme", demo_corpus / "vocab_phoneme.txt")
    held_out = [json.loads(ln)["text"] for ln in (demo_corpus / "test.jsonl").read_text().splitlines()]
    assert held_out and all(tok.unknown(t) == [] for t in held_out)
    assert "ˈiː" in tok.vocab or "iː" in tok.vocab  # marks are grouped with their vowel


def test_export_writes_a_loadable_model_folder_and_never_half_replaces_it(phoneme_run, demo_corpus, tmp_path):
    import shutil

    from safetensors.torch import load_file

    from f5rl.infer.tts import TTS
    from f5rl.scripts.demo_base import export

    shutil.copy(phoneme_run / "model_last.pt", phoneme_run / "model_best.pt")  # two candidates to choose from
    out = tmp_path / "demo_base"
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("stages:\n  - {name: only, corpus: data/x, extra_train_sentences: 0, total_updates: 2}\n")
    report = export(phoneme_run, out, demo_corpus, n_items=2, nfe=2, recipe_file=recipe)
    # the folder replaces `out` whole, so it carries what the shipped copy is rebuilt and described from:
    # the recipe it trained and the card's template (exporting into the package once deleted both)
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "card.md", "config.yaml", "curves.png", "metrics.json", "model.safetensors", "recipe.yaml",
        "token_counts.json", "vocab.txt"]
    assert (out / "recipe.yaml").read_text() == recipe.read_text()
    from f5rl.scripts.demo_base import CARD_TEMPLATE
    assert (out / "card.md").read_text() == CARD_TEMPLATE.read_text()
    # the rows the run trained (its record in the save dir), read by the fallback of whoever loads it
    assert (out / "token_counts.json").read_text() == (phoneme_run / "token_counts.json").read_text()
    keys = load_file(out / "model.safetensors")
    assert all(k.startswith("ema_model.transformer.") or k in ("initted", "step") for k in keys)
    assert int(keys["step"]) == 2
    info = json.loads((out / "metrics.json").read_text())
    assert info["measured"]["items"] == 2 and info["measured"]["cer"] == report.cer
    assert info["measured_free_text"]["items"] == 2  # the free-text list too, reported in the card
    assert f"free-text sentences (`test_free_eval.jsonl`, 2 items) | {info['measured_free_text']['cer']:.3f}" in \
        (out / "README.md").read_text()
    assert set(info["selection_split_cer"]) == {"model_best.pt", "model_last.pt"}  # chosen on other items
    assert [r["utt"] for r in info["measured"]["per_item"]] == [r["utt"] for r in report.per_item]
    assert report.cer >= 0 and -1 <= report.different_speaker_sim <= 1
    assert f"{report.cer:.3f}" in (out / "README.md").read_text()
    assert "tokenizer_path: vocab.txt" in (out / "config.yaml").read_text()
    # the folder is self-contained: the vocab resolves beside its config, the phoneme tokenizer is used
    tts = TTS.from_checkpoint(out / "model.safetensors", device="cpu", precision="no")
    assert tts.tokenizer.kind == "phoneme" and tts.model.transformer.config.text_embedding_average_upsampling
    assert tts.tokenizer.fallback.trained  # read from the exported token_counts.json
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="asked for"):
        export(phoneme_run, out, demo_corpus, n_items=10_000, nfe=2)
    assert (out / "model.safetensors").read_bytes() == before  # the failed export left the old folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_base", "mine.yaml"]  # and no temp folder behind


def test_demo_refuses_a_missing_base_before_any_work(tmp_path):
    from f5rl.eval.base_model import check_base

    (tmp_path / "config.yaml").write_text("model: {}\n")
    with pytest.raises(FileNotFoundError, match="model.safetensors, vocab.txt.*make demo-base"):
        check_base(tmp_path)


def test_base_overrides_rebuild_the_shipped_network():
    from omegaconf import OmegaConf

    from f5rl.config import compose, validate
    from f5rl.config.schema import RLTrainConfig
    from f5rl.eval.base_model import SHIPPED, base_overrides

    cfg = validate(compose("F5TTS_RL_tiny", base_overrides(SHIPPED)), RLTrainConfig)
    arch = OmegaConf.load(SHIPPED / "config.yaml").model.arch
    for key, value in OmegaConf.to_container(arch).items():
        assert getattr(cfg.model.arch, key) == value, key
    assert cfg.model.tokenizer == "phoneme" and cfg.model.tokenizer_path == str(SHIPPED / "vocab.txt")


TINY = ["model.arch.dim=64", "model.arch.depth=2", "model.arch.heads=2", "model.arch.dim_head=32",
        "model.arch.text_dim=32", "model.arch.conv_layers=1", "optim.mixed_precision=no", "ckpts.logger=null",
        "datasets.batch_size_type=sample", "datasets.batch_size_per_gpu=4", "ckpts.val_every=0",
        "ckpts.keep_best_by=null",
        "optim.num_warmup_updates=1", "ckpts.last_per_updates=1"]


def test_recipe_runs_its_stages_in_order_and_never_starts_one_from_an_unfinished_one(tmp_path, demo_corpus):
    pytest.importorskip("piper", reason="piper (the demo extra) synthesises the demo corpus")
    import torch

    from f5rl.scripts.demo_base import Stage, run_recipe

    recipe = (Stage("first", str(demo_corpus), 0, 2), Stage("second", "more", 6, 4, sentences=20))
    save = tmp_path / "run"
    # stopped early inside the first stage: the second stage's corpus is not even built
    assert run_recipe(demo_corpus, save, [*TINY, "optim.max_updates=1"], recipe, root=tmp_path) is False
    assert torch.load(save / "model_last.pt", weights_only=True)["update"] == 1
    assert not (tmp_path / "more").exists() and not (save / "model_last_first.pt").exists()
    # run again: the first stage resumes to its end, the second continues on the larger corpus
    assert run_recipe(demo_corpus, save, TINY, recipe, root=tmp_path) is True
    info = json.loads((tmp_path / "more" / "speakers.json").read_text())
    assert info["extra_train_sentences"] == 6 and info["train_items"] == 20 - info["test_items"] + 6
    assert torch.load(save / "model_last_first.pt", weights_only=True)["update"] == 2
    assert torch.load(save / "model_last.pt", weights_only=True)["update"] == 4
    cfg = (save / "config.yaml").read_text()
    assert f"path: {tmp_path / 'more'}" in cfg and f"val_list: {demo_corpus / 'test_eval.jsonl'}" in cfg
    assert run_recipe(demo_corpus, save, TINY, recipe, root=tmp_path) is True  # complete: nothing to do
    assert torch.load(save / "model_last.pt", weights_only=True)["update"] == 4


def test_demo_base_trains_the_recipe_file_it_is_given(tmp_path, demo_corpus):
    pytest.importorskip("piper", reason="piper (the demo extra) synthesises the demo corpus")
    import torch

    from f5rl.scripts.demo_base import main

    recipe = tmp_path / "mine.yaml"
    stage = f"{{name: only, corpus: {demo_corpus}, extra_train_sentences: 0, total_updates: 3}}"
    recipe.write_text(f"stages:\n  - {stage}\n")
    save = tmp_path / "run"
    main(["--data", str(demo_corpus), "--save-dir", str(save), "--recipe", str(recipe), "--no-export", "--", *TINY])
    assert torch.load(save / "model_last.pt", weights_only=True)["update"] == 3  # its stage, not the shipped 10500


@pytest.mark.parametrize("text, says", [(None, "does not exist"), ("stages:\n  - {name: x}\n", "is not a recipe"),
                                        ("stages: [\n", "is not a recipe")])
def test_demo_base_refuses_a_bad_recipe_in_one_line_before_any_work(tmp_path, capsys, text, says):
    from f5rl.scripts.demo_base import main

    recipe = tmp_path / "r.yaml"
    if text is not None:
        recipe.write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["--data", str(tmp_path / "no_corpus"), "--save-dir", str(tmp_path / "run"), "--recipe", str(recipe)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert says in err and "--recipe" in err
    assert not (tmp_path / "no_corpus").exists() and not (tmp_path / "run").exists()


def test_recipe_and_model_card_are_data_beside_the_shipped_model():
    """recipe.yaml holds the stages; card.md is the card's template: filled from the shipped config and
    metrics it gives back the shipped README exactly."""
    import json

    from omegaconf import OmegaConf

    from f5rl.eval.base_model import SHIPPED
    from f5rl.scripts.demo_base import RECIPE, model_card

    assert [s.name for s in RECIPE] == ["templates", "more_text", "most_text"]
    assert [s.total_updates for s in RECIPE] == [10500, 19500, 26500]
    info = json.loads((SHIPPED / "metrics.json").read_text())
    card = model_card(OmegaConf.load(SHIPPED / "config.yaml"), info)
    assert card == (SHIPPED / "README.md").read_text()
    assert f"{info['measured']['cer']:.3f}" in card
