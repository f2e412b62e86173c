import torch

from f5rl.model import DiT, load_dit_checkpoint, save_released_format
from f5rl.scripts.extend_vocab import main
from f5rl.text import build_tokenizer, write_vocab
from tests.conftest import tiny_config


def test_extend_vocab_cli_output_loads_with_new_tokens(tmp_path):
    write_vocab(tmp_path / "old.txt", [" ", *"abcdefghijklmnopqrstuvwxyz.,!"])  # 30 tokens
    torch.manual_seed(0)
    src = DiT(tiny_config(text_num_embeds=30))
    save_released_format(src.state_dict(), tmp_path / "base.safetensors")
    (tmp_path / "new.txt").write_text("ñandú é\n")
    main(["--ckpt", str(tmp_path / "base.safetensors"), "--vocab", str(tmp_path / "old.txt"),
          "--new_tokens", str(tmp_path / "new.txt"), "--out", str(tmp_path / "ext.safetensors"),
          "--out_vocab", str(tmp_path / "new_vocab.txt")])
    tok = build_tokenizer("custom", tmp_path / "new_vocab.txt")
    assert tok.vocab_size == 33 and tok.unknown("ñandú é") == []
    model = DiT(tiny_config(text_num_embeds=33))
    load_dit_checkpoint(model, tmp_path / "ext.safetensors")
    assert torch.equal(model.text_embed.text_embed.weight[:31], src.text_embed.text_embed.weight)
