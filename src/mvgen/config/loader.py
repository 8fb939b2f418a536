"""Read a shot list: YAML (safe_load semantics) -> ``ShotList``, with errors that point at the place.

Errors read ``shots.yaml:14:5: shots[3].length: must be > 0 (got -2)``: the YAML is composed into
nodes first so that a pydantic error location can be mapped back to a line and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mvgen.config.schema import LocatedValueError, ShotList
from mvgen.errors import ConfigError

MAX_SHOTLIST_BYTES = 5 * 1024 * 1024
# Tags of the schema's discriminated unions: pydantic puts them in error locations; users never write them.
_UNION_TAGS = {"audio-path", "audio-settings", "transition-name", "transition-blend"}


@dataclass(frozen=True)
class LoadedShotList:
    """A validated shot list and where it came from (paths in it are relative to ``base_dir``)."""

    shots: ShotList
    path: Path
    base_dir: Path
    text: str
    root: yaml.Node | None  # the composed YAML, to point at fields later (plan-time errors)


def loc_str(loc: tuple[Any, ...]) -> str:
    """``("shots", 3, "length")`` -> ``shots[3].length``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _find_node(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """Walk composed YAML nodes along a pydantic location; return the deepest node reached."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    nxt = value_node
                    break
            if nxt is None:
                return node
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _mark(path: Path, node: yaml.Node | None) -> str:
    """``FILE:LINE:COL`` of a node (``FILE`` alone without one)."""
    if node is None:
        return str(path)
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _key_node(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """For an unknown key, point at the key itself rather than its parent mapping."""
    parent = _find_node(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for key_node, _ in parent.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(loc[-1]):
                return key_node
    return None


def _describe(err: dict[str, Any]) -> str:
    kind = err["type"]
    msg = err["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check its spelling; configs/reference.yaml lists every key)"
    if kind == "missing":
        return "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if "got" in msg:
        return msg
    got = err.get("input")
    if isinstance(got, dict | list):
        got_s = type(got).__name__
    else:
        got_s = repr(got)
        if len(got_s) > 60:
            got_s = got_s[:57] + "..."
    return f"{msg} (got {got_s})"


def _format_validation_error(exc: ValidationError, path: Path, root: yaml.Node | None) -> str:
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    # pydantic adds the tag of a function-validator to the location; drop non-field parts.
    loc = tuple(
        p for p in loc if isinstance(p, int) or not (str(p).startswith("function-") or p in _UNION_TAGS)
    )
    located = (err.get("ctx") or {}).get("error")
    if isinstance(located, LocatedValueError):
        loc, msg = (*loc, *located.loc), str(located)
    else:
        msg = _describe(err)
    node = _key_node(root, loc) if err["type"] == "extra_forbidden" else _find_node(root, loc)
    where = _mark(path, node)
    more = len(exc.errors()) - 1
    suffix = f" (+{more} more error{'s' if more > 1 else ''})" if more > 0 else ""
    return f"{where}: {loc_str(loc)}: {msg}{suffix}"


def _check_duplicate_keys(node: yaml.Node | None, path: Path, loc: tuple[Any, ...] = ()) -> None:
    """PyYAML keeps the last of two equal keys without a word; in a shot list that silently drops
    a setting (two `model:` lines), so it is an error."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
                if key in seen:
                    raise ConfigError(
                        f"{_mark(path, key_node)}: {loc_str((*loc, key))}: duplicate key "
                        f"(first set on line {seen[key].start_mark.line + 1})"
                    )
                seen[key] = key_node
                _check_duplicate_keys(value_node, path, (*loc, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, path, (*loc, i))


def parse_shotlist_text(text: str, path: Path) -> ShotList:
    """Parse and validate YAML text; ``path`` is only used in messages."""
    return _parse(text, path)[0]


def _parse(text: str, path: Path) -> tuple[ShotList, yaml.Node | None]:
    """Compose the YAML once (nodes keep line/column for messages), construct it with the safe
    constructors (what ``yaml.safe_load`` does), validate."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:  # a byte YAML may not contain (control characters...)
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise ConfigError(
            f"{path}:{line}:{col}: invalid YAML: character {exc.character!r} is not allowed"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        raise ConfigError(f"{path}: the shot list is empty", hint="see examples/neon-drive/shots.yaml")
    _check_duplicate_keys(root, path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1:1: the shot list must be a mapping with a `shots:` list (got {type(data).__name__})"
        )
    if "version" in data and data["version"] != 1:
        raise ConfigError(
            f"{_mark(path, _find_node(root, ('version',)))}: version: unsupported schema version (got {data['version']!r})",
            hint="this mvgen reads version: 1",
        )
    try:
        return ShotList.model_validate(data), root
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, path, root)) from None


def load_shotlist(path: str | Path) -> LoadedShotList:
    """Read and validate a shot list file. Raises ``ConfigError`` naming the file, line and field."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: shot list not found")
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, not a shot list file")
    try:
        size = p.stat().st_size
        if size > MAX_SHOTLIST_BYTES:
            raise ConfigError(f"{p}: {size} bytes is too large for a shot list (limit {MAX_SHOTLIST_BYTES})")
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the shot list: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: not UTF-8 text (byte {exc.start}); is this really a YAML shot list?"
        ) from None
    shots, root = _parse(text, p)
    return LoadedShotList(shots=shots, path=p, base_dir=p.resolve().parent, text=text, root=root)


def locate(loaded: LoadedShotList, loc: tuple[Any, ...]) -> str:
    """``FILE:LINE:COL`` of a field of a loaded shot list (``FILE`` alone when it is not written)."""
    node = _find_node(loaded.root, loc) if loc else None
    return _mark(loaded.path, None if node is loaded.root else node)
