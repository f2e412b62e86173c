"""``python -m f5rl``: the commands, one line each (read from their docstrings; nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

# name -> (module, configured by Hydra)
COMMANDS = {
    "prepare": ("f5rl.data.prepare", False),
    "prepare-demo": ("f5rl.data.prepare_demo", False),
    "test-lists": ("f5rl.data.test_lists", False),
    "train": ("f5rl.train.train", True),
    "train-rl": ("f5rl.train.train_rl", True),
    "train-dpo": ("f5rl.train.train_dpo", True),
    "text-context-pairs": ("f5rl.prefs.create_text_context_pairs", False),
    "generate": ("f5rl.prefs.generate", False),
    "preference-pairs": ("f5rl.prefs.create_preference_pairs", False),
    "iterate": ("f5rl.prefs.iterate", False),
    "synthesize": ("f5rl.infer.synthesize", False),
    "evaluate": ("f5rl.eval.evaluate", False),
    "serve-rewards": ("f5rl.rewards.serve", False),
    "fetch-asr-model": ("f5rl.scripts.fetch_reward_asr_model", False),
    "fetch-spk-model": ("f5rl.scripts.fetch_reward_spk_model", False),
    "extend-vocab": ("f5rl.scripts.extend_vocab", False),
    "merge-lora": ("f5rl.scripts.merge_lora", False),
    "demo": ("f5rl.scripts.demo", False),
    "demo-base": ("f5rl.scripts.demo_base", False),
    "gpu-check": ("f5rl.scripts.gpu_check", False),
    "app": ("f5rl.app.launch", False),
}


def summary(module: str) -> str:
    """The first line of a module's docstring, read from its source."""
    path = Path(__file__).parent.joinpath(*module.split(".")[1:]).with_suffix(".py")
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0].rstrip(":") if doc.strip() else ""


def main() -> None:
    print("f5rl commands (python -m MODULE --help for each one's flags; Hydra ones take key=value overrides):")
    width = max(len(m) for m, _ in COMMANDS.values())
    for name, (module, hydra) in COMMANDS.items():
        print(f"  {name:<19} python -m {module:<{width}}  {summary(module)}{' [Hydra]' if hydra else ''}")


if __name__ == "__main__":
    main()
