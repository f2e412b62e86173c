"""Grow a checkpoint's text embedding for a new language, keeping every old row.

    python -m f5rl.scripts.extend_vocab --ckpt model_1250000.safetensors \
        --vocab data/Emilia_ZH_EN_pinyin/vocab.txt --new_tokens my_vocab.txt \
        --out ckpts/my_run/pretrained_model_extended.safetensors --out_vocab data/my_run/vocab.txt

``--new_tokens`` is a vocab.txt (one token per line) or a text file whose characters are added.
The output is in the released layout (``ema_model.`` prefix), so it drops into a save dir as a
``pretrained_*`` file; train with ``model.tokenizer=custom model.tokenizer_path=<out_vocab>``.
"""

from __future__ import annotations

from pathlib import Path

from f5rl.model.checkpoint import dit_state_from, read_weights_file, save_released_format
from f5rl.text.vocab import extend_vocab, read_vocab, write_vocab
from f5rl.utils.cli import command_parser


def new_tokens_from(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if lines and lines[0] == " ":  # a vocab.txt
        return [t for t in lines if t]
    return sorted({c for line in lines for c in line})


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--ckpt", required=True, help="the checkpoint whose text embedding grows")
    ap.add_argument("--vocab", required=True, help="the checkpoint's vocab.txt")
    ap.add_argument("--new_tokens", required=True, help="a vocab.txt or a text file of new characters")
    ap.add_argument("--out", required=True, help="output .safetensors")
    ap.add_argument("--out_vocab", required=True, help="the extended vocab.txt written beside the new checkpoint")
    ap.add_argument("--seed", type=int, default=0, help="seed of the new rows' initialisation")
    args = ap.parse_args(argv)
    old = read_vocab(args.vocab)
    state = dit_state_from(read_weights_file(args.ckpt), use_ema=True)
    new_state, tokens = extend_vocab(state, old, new_tokens_from(Path(args.new_tokens)), seed=args.seed)
    save_released_format(new_state, args.out)
    write_vocab(args.out_vocab, tokens)
    print(f"vocab {len(old)} -> {len(tokens)} tokens; wrote {args.out} and {args.out_vocab}")


if __name__ == "__main__":
    main()
