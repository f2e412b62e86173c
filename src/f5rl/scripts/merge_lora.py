"""Fold LoRA adapters of an f5rl checkpoint into plain F5-format weights.

    python -m f5rl.scripts.merge_lora --ckpt ckpts/run/model_last.pt --out ckpts/run/merged.safetensors [--no_ema]

The output is in the released layout (``ema_model.transformer.*`` + ``initted``/``step``) and
loads strictly into the plain DiT (and into F5-TTS).
"""

from __future__ import annotations

from f5rl.model.checkpoint import dit_state_from, read_weights_file, save_released_format
from f5rl.model.lora import merge_lora_state
from f5rl.utils.cli import command_parser


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--ckpt", required=True, help="an f5rl checkpoint trained with LoRA adapters")
    ap.add_argument("--out", required=True, help="the merged .safetensors (or .pt) to write")
    ap.add_argument("--no_ema", action="store_true", help="merge the online weights instead of the EMA")
    args = ap.parse_args(argv)
    raw = read_weights_file(args.ckpt)
    state = dit_state_from(raw, use_ema=not args.no_ema)
    n = sum(1 for k in state if k.endswith("lora_A"))
    if n == 0:
        raise SystemExit(f"{args.ckpt} has no LoRA adapters (nothing to merge)")
    merged = merge_lora_state(state)
    save_released_format(merged, args.out, step=int(raw.get("update", 0)) if isinstance(raw, dict) else 0)
    print(f"merged {n} adapters into {args.out}")


if __name__ == "__main__":
    main()
