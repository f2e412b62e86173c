"""The package's shape, enforced: lower layers never import higher ones, no module grows past what
one reads in a sitting. ARCHITECTURE.md explains the layers."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "f5rl"

# lowest first; a package may import its own layer and the layers below it, never one above
LAYERS = [
    {"utils", "config"},
    {"audio", "text"},
    {"rl"},  # pure functions of tensors
    {"model"},
    {"data"},
    {"rollout"},  # records rollouts; the one place stage 2 and DPO evaluate a network
    {"rewards"},
    {"infer"},
    {"eval"},
    {"train"},
    {"prefs"},
    {"scripts", "app", "__init__", "__main__"},
]
MAX_LINES = 450


def layer_of(package: str) -> int:
    for i, names in enumerate(LAYERS):
        if package in names:
            return i
    raise AssertionError(f"package f5rl.{package} is in no layer: add it to LAYERS in {__file__}")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported f5rl package) of every import in a module, lazy ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "f5rl" and len(parts) > 1:
                out.append((node.lineno, parts[1]))
    return out


def modules():
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for path in modules():
        rel = path.relative_to(SRC)
        own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for line, package in imports(path):
            if package != own and layer_of(package) > layer_of(own):
                wrong.append(f"{rel}:{line} imports f5rl.{package} (layer {layer_of(package)} > {layer_of(own)})")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_longer_than_one_sitting():
    long = [f"{p.relative_to(SRC)}: {n} lines" for p in modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, "\n".join(long)


def test_the_checker_sees_a_violation():
    """The layer rule is not vacuous: an import of a higher layer from a lower one is found."""
    assert layer_of("rl") < layer_of("rollout") < layer_of("train")
    assert any(pkg == "model" for _, pkg in imports(SRC / "rollout" / "evaluate.py"))
