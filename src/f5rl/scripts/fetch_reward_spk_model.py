"""Fetch the WeSpeaker ResNet34 (CN-Celeb) model used by the ``wespeaker_sim`` reward.

    python -m f5rl.scripts.fetch_reward_spk_model --cache_dir checkpoints/wespeaker/cnceleb_resnet34
    python -m f5rl.scripts.fetch_reward_spk_model --cache_dir ... --offline   # only verify a local copy

The model folder is ``<cache_dir>/cnceleb_resnet34`` (``config.yaml`` + ``avg_model.pt``); then:
``rl.rewards.providers.0.config.model_dir=$PWD/checkpoints/wespeaker/cnceleb_resnet34/cnceleb_resnet34``.
"""

from __future__ import annotations

from pathlib import Path

from f5rl.scripts._fetch import fetch
from f5rl.utils.cli import command_parser

REPO = "Wespeaker/wespeaker-cnceleb-resnet34"
REQUIRED = ("config.yaml", "avg_model.pt")


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--cache_dir", required=True, help="folder the model is written to (rl.rewards...config.model_dir)")
    ap.add_argument("--repo_id", default=REPO, help="Hugging Face repository")
    ap.add_argument("--offline", action="store_true", help="do not download; check the local copy")
    args = ap.parse_args(argv)
    fetch(args.repo_id, Path(args.cache_dir) / "cnceleb_resnet34", REQUIRED, args.offline, "WeSpeaker ResNet34",
          "https://wespeaker-1256283475.cos.ap-shanghai.myqcloud.com/models/cnceleb/cnceleb_resnet34.zip")


if __name__ == "__main__":
    main()
