"""Fetch the FunASR SenseVoiceSmall model used by the ``funasr_wer`` reward.

    python -m f5rl.scripts.fetch_reward_asr_model --cache_dir checkpoints/funasr/SenseVoiceSmall
    python -m f5rl.scripts.fetch_reward_asr_model --cache_dir ... --offline   # only verify a local copy

Then: ``rl.rewards.providers.1.config.model_id=$PWD/checkpoints/funasr/SenseVoiceSmall``.
"""

from __future__ import annotations

from pathlib import Path

from f5rl.scripts._fetch import fetch
from f5rl.utils.cli import command_parser

REPO = "FunAudioLLM/SenseVoiceSmall"
REQUIRED = ("config.yaml", "model.pt", "am.mvn", "chn_jpn_yue_eng_ko_spectok.bpe.model")


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--cache_dir", required=True, help="folder the model is written to (rl.rewards...config.model_id)")
    ap.add_argument("--repo_id", default=REPO, help="Hugging Face repository")
    ap.add_argument("--offline", action="store_true", help="do not download; check the local copy")
    args = ap.parse_args(argv)
    fetch(args.repo_id, Path(args.cache_dir), REQUIRED, args.offline, "SenseVoiceSmall",
          "https://modelscope.cn/models/iic/SenseVoiceSmall")


if __name__ == "__main__":
    main()
