"""Imports flow one way (STYLE.md): cli|console -> api -> batch -> pipeline|cutsheet -> generate|media|cache|locks|estimate|takes
-> timeline -> config|audio -> errors|progress|files|ffmpeg|wording|counts|ownership. A module may import its own layer or
lower ones, never a higher one; importing ``mvgen`` itself must stay cheap (see test_cli)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "mvgen"

LAYERS = {
    "errors": 0, "progress": 0, "files": 0, "ffmpeg": 0, "wording": 0, "counts": 0, "ownership": 0,
    "config": 1, "audio": 1, "families": 1,
    "timeline": 2,
    "cache": 3, "media": 3, "generate": 3, "locks": 3, "estimate": 3, "takes": 3,
    "pipeline": 4, "cutsheet": 4, "report": 4, "otio_export": 4, "distributed": 4,
    "batch": 5,
    "api": 6,
    "cli": 7, "console": 7, "__main__": 8, "__init__": 0,
}  # fmt: skip


def _layer(module: str) -> int:
    top = module.split(".")[1] if module.startswith("mvgen.") else "__init__"
    return LAYERS[top]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mvgen"):
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("mvgen")]
    return out


def test_no_module_imports_a_higher_layer():
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts)
        if module.endswith(".__init__"):
            module = module[: -len(".__init__")]
        own = _layer(module) if module != "mvgen" else 0
        for line, target in _imports(path):
            if target == "mvgen":
                continue
            if _layer(target) > own:
                problems.append(f"{path.relative_to(SRC.parent)}:{line}: {module} imports {target}")
    assert problems == []


def test_every_module_has_a_layer():
    tops = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in SRC.rglob("*.py")}
    assert tops - set(LAYERS) == set()
