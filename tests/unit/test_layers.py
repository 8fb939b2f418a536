"""Imports flow one way (STYLE.md, README's Development section), imports inside functions included:
cli|console -> api -> batch -> pipeline|distributed -> render|records|cutsheet -> prepare|report|otio_export
-> cache|keys|media|generate|locks|estimate|takes -> timeline|planner -> config|audio|families
-> errors|progress|files|ffmpeg|wording|counts|ownership.
A module may import its own layer or lower ones, never a higher one; no two modules import each other,
however indirectly; no module reaches for another's private names. Importing ``mvgen`` itself must
stay cheap (see test_cli). No module is over 500 lines and no function over 80."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "mvgen"

LAYERS = {
    "errors": 0, "progress": 0, "files": 0, "ffmpeg": 0, "wording": 0, "counts": 0, "ownership": 0, "exiting": 0,
    "config": 1, "audio": 1, "families": 1, "options": 1,
    "timeline": 2, "planner": 2, "bridges": 2,
    "cache": 3, "keys": 3, "manifest": 3, "media": 3, "generate": 3, "locks": 3, "estimate": 3, "takes": 3,
    "prepare": 4, "prepare_loras": 4, "report": 4, "otio_export": 4,
    "render": 5, "records": 5, "cutsheet": 5,
    "pipeline": 6, "distributed": 6,
    "batch": 7,
    "api": 8,
    "cli": 9, "console": 9, "__main__": 10, "__init__": 0,
}  # fmt: skip

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
# Data tables, not logic: a function that only builds a literal may be longer.
TABLES = {("config/presets.py", "_builtin_presets")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    top = module.split(".")[1] if module.startswith("mvgen.") else "__init__"
    return LAYERS[top]


def _resolve(name: str) -> str | None:
    """The package module an imported dotted name lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) of every mvgen import in ``module``, function bodies included."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, _resolve(a.name), []) for a in node.names if a.name.startswith("mvgen")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if not base.startswith("mvgen"):
                continue
            for a in node.names:  # `from mvgen.x import y` where y is a module imports that module
                sub = f"{base}.{a.name}"
                out.append((node.lineno, sub if sub in MODULES else _resolve(base), [a.name]))
    return [(line, target, names) for line, target, names in out if target is not None]


def _graph() -> dict[str, set[str]]:
    return {m: {t for _, t, _ in _imports(m) if t != m} for m in MODULES}


def test_no_module_imports_a_higher_layer():
    problems = []
    for module in MODULES:
        own = _layer(module)
        for line, target, _ in _imports(module):
            if target != "mvgen" and _layer(target) > own:
                problems.append(
                    f"{MODULES[module].relative_to(SRC.parent)}:{line}: {module} imports {target}"
                )
    assert problems == []


def test_no_import_cycle():
    graph = _graph()
    cycles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_cycle_check_sees_imports_inside_functions(tmp_path):
    """The walk counts an import in a function body (where a lazy cycle hides)."""
    lazy = [(line, t) for line, t, _ in _imports("mvgen.render.executors") if t == "mvgen.generate"]
    assert lazy, "render.executors imports mvgen.generate inside BackendPool.get"


def test_no_module_uses_another_modules_private_names():
    problems = [
        f"{MODULES[m].relative_to(SRC.parent)}:{line}: {name} from {target}"
        for m in MODULES
        for line, target, names in _imports(m)
        for name in names
        if name.startswith("_") and not name.startswith("__") and target != m
    ]
    assert problems == []


def test_ray_is_an_executor_not_a_second_render_path():
    """distributed.py produces slots through render/produce.py like the local executor, and imports
    nothing of the orchestrator above it."""
    targets = {t for _, t, _ in _imports("mvgen.distributed")}
    assert "mvgen.render.produce" in targets
    assert not targets & {"mvgen.pipeline", "mvgen.batch", "mvgen.api", "mvgen.cli"}


def test_every_module_has_a_layer():
    tops = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in SRC.rglob("*.py")}
    assert tops - set(LAYERS) == set()


def test_modules_and_functions_are_short():
    problems = []
    for path in MODULES.values():
        rel = path.relative_to(SRC).as_posix()
        lines = path.read_text().count("\n")
        if lines > MAX_MODULE_LINES:
            problems.append(f"{rel}: {lines} lines")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (rel, node.name) not in TABLES:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    problems.append(f"{rel}:{node.lineno}: {node.name}() is {length} lines")
    assert problems == []
