"""Shared logic of the reward-model fetch scripts: hub download or verification of a local copy,
with a fast, explicit failure offline."""

from __future__ import annotations

import os
from pathlib import Path


def verify(folder: Path, required: tuple[str, ...]) -> list[str]:
    return [name for name in required if not (folder / name).is_file()]


def fetch(repo_id: str, folder: Path, required: tuple[str, ...], offline: bool, what: str, manual_url: str) -> Path:
    """Download ``repo_id`` into ``folder`` (or only check it with ``offline``); returns ``folder``."""
    folder = folder.expanduser()
    missing = verify(folder, required)
    if not missing:
        print(f"{what}: {folder} is complete ({', '.join(required)})")
        return folder
    how = (f"download {repo_id} (https://huggingface.co/{repo_id}) or {manual_url} on a machine with network and "
           f"copy {', '.join(required)} into {folder}")
    if offline or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise SystemExit(f"{what}: {folder} lacks {missing} and no download is possible offline; {how}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise SystemExit(f"{what}: huggingface_hub is needed to download ({err}); {how}") from err
    try:
        snapshot_download(repo_id, local_dir=str(folder), etag_timeout=10)
    except Exception as err:  # network/auth failures come in many types
        raise SystemExit(f"{what}: download of {repo_id} failed ({type(err).__name__}: {err}); {how}") from err
    missing = verify(folder, required)
    if missing:
        raise SystemExit(f"{what}: downloaded {repo_id} but {missing} are missing; {how}")
    print(f"{what}: fetched into {folder}")
    return folder
