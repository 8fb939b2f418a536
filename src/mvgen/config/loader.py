"""Read a shot list: YAML (safe_load semantics) -> ``ShotList``, with errors that point at the place.

Errors read ``shots.yaml:14:5: shots[3].length: must be > 0 (got -2)``: the YAML is composed into
nodes first so that a pydantic error location can be mapped back to a line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from mvgen.config.schema import (
    ACCEPTED_FORMS,
    TRANSITION_WORDS,
    AudioSettings,
    Blend,
    LocatedValueError,
    OutputSettings,
    ShotList,
)
from mvgen.errors import ConfigError
from mvgen.wording import did_you_mean, plural

MAX_SHOTLIST_BYTES = 5 * 1024 * 1024


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


def find_node(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
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
    parent = find_node(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for key_node, _ in parent.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(loc[-1]):
                return key_node
    return None


# The schema's discriminated unions: the tag pydantic puts in an error location -> the model it
# validates with (None: a plain value such as a path or a transition's name).
_UNION_TAGS: dict[str, type[BaseModel] | None] = {
    "audio-path": None, "audio-settings": AudioSettings, "output-path": None, "output-settings": OutputSettings,
    "transition-name": None, "transition-blend": Blend,
}  # fmt: skip
# Errors about the shape of a value (a typo in a name, a number where a mapping goes): for a key
# with several accepted forms, the message names them all.
_FORM_ERRORS = {"literal_error", "string_type", "model_type", "dict_type", "model_attributes_type"}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (a location with union tags)."""
    model: type[BaseModel] | None = ShotList
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue  # an item of a list: the list's field already led to its item's model
        if part in _UNION_TAGS:
            model = _UNION_TAGS[part]
            continue
        field = model.model_fields.get(str(part))
        model = _inner_model(field.annotation) if field is not None else None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The first pydantic model inside a type (through Optional, list[...], Annotated, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _got(err: dict[str, Any]) -> str:
    got = err.get("input")
    if isinstance(got, dict | list):
        return "a mapping" if isinstance(got, dict) else "a list"
    text = repr(got)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected_words(err: dict[str, Any]) -> list[str]:
    """The words a literal error accepts: ``'beats', 'bars' or 'sections'`` -> [beats, bars, sections]."""
    return re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))


def _describe(err: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """One error's message: what is wrong, what is accepted, and a near miss's fix."""
    kind, msg = err["type"], err["msg"]
    field = next((str(p) for p in reversed(loc) if not isinstance(p, int)), "")
    if kind == "extra_forbidden":
        model = _model_at(tuple(err["loc"])[:-1])
        keys = sorted(model.model_fields) if model is not None else []
        near = did_you_mean(str(loc[-1]), keys)
        if near:
            return f"unknown key{near}"
        here = f"keys here: {', '.join(keys)}; " if keys else ""
        return f"unknown key ({here}`mvgen reference` lists every key)"
    if kind == "missing":
        return "required key is missing"
    got = _got(err)
    if field in ACCEPTED_FORMS and kind in _FORM_ERRORS:
        words = TRANSITION_WORDS if field == "transition" else {}
        near = (
            did_you_mean(str(err.get("input")), words, show=lambda w: words[w])
            if isinstance(err.get("input"), str)
            else ""
        )
        return f"must be {ACCEPTED_FORMS[field]} (got {got}){near}"
    if kind == "literal_error":
        words = _expected_words(err)
        near = did_you_mean(str(err.get("input")), words, show=repr)
        return f"must be one of {', '.join(words)} (got {got}){near}"
    bound = _bound_message(kind, err.get("ctx") or {}, err.get("input"))
    if bound is not None:
        return bound if bound.endswith("empty") else f"{bound} (got {got})"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    # a mapping's own check (exactly one of two keys...) speaks of its keys, not of "a mapping"
    return msg if "got" in msg or isinstance(err.get("input"), dict) else f"{msg} (got {got})"


def _bound_message(kind: str, ctx: dict[str, Any], value: Any) -> str | None:
    """pydantic's bound errors as the rest of mvgen's messages say them ("must be > 0")."""
    ops = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"), "less_than": ("<", "lt"),
           "less_than_equal": ("<=", "le")}  # fmt: skip
    if kind in ops:
        op, name = ops[kind]
        return f"must be {op} {ctx.get(name):g}"
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in ("string_too_short", "string_too_long"):
        limit = ctx.get("min_length", ctx.get("max_length"))
        return f"must be at {'least' if kind.endswith('short') else 'most'} {plural(limit, 'character')} long"
    if kind in ("too_short", "too_long"):
        limit = ctx.get("min_length", ctx.get("max_length"))
        return f"must have at {'least' if kind.endswith('short') else 'most'} {plural(limit, 'item')}"
    return None


def _validation_problems(
    exc: ValidationError, path: Path, root: yaml.Node | None
) -> list[tuple[tuple[int, int], str]]:
    """Every error of a failed validation as ``(position, "FILE:LINE:COL: field.path: message")``."""
    out = []
    for err in exc.errors(include_url=False):
        # pydantic adds a function-validator's and a union's tag to the location: not fields
        loc = tuple(
            p for p in err["loc"]
            if isinstance(p, int) or not (str(p).startswith("function-") or p in _UNION_TAGS)
        )  # fmt: skip
        located = (err.get("ctx") or {}).get("error")
        if isinstance(located, LocatedValueError):
            loc, msg = (*loc, *located.loc), str(located)
        else:
            msg = _describe(err, loc)
        node = _key_node(root, loc) if err["type"] == "extra_forbidden" else find_node(root, loc)
        out.append((_position(node), f"{_mark(path, node)}: {loc_str(loc)}: {msg}"))
    return out


def _position(node: yaml.Node | None) -> tuple[int, int]:
    return (node.start_mark.line, node.start_mark.column) if node is not None else (-1, -1)


def _raise_all(problems: list[tuple[tuple[int, int], str]]) -> None:
    """One ConfigError carrying every problem, in file order (exit 2)."""
    lines = [text for _, text in sorted(problems, key=lambda p: p[0])]
    lines = list(dict.fromkeys(lines))  # one error reported twice (a union's two branches) once
    raise ConfigError(lines[0], more=tuple(lines[1:]))


def _duplicate_keys(
    node: yaml.Node | None, path: Path, loc: tuple[Any, ...] = ()
) -> list[tuple[tuple[int, int], str]]:
    """PyYAML keeps the last of two equal keys without a word; in a shot list that silently drops
    a setting (two `model:` lines), so each is an error."""
    found = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
                if key in seen:
                    found.append((_position(key_node), f"{_mark(path, key_node)}: {loc_str((*loc, key))}: "
                                  f"duplicate key (first set on line {seen[key].start_mark.line + 1})"))  # fmt: skip
                seen[key] = key_node
                found += _duplicate_keys(value_node, path, (*loc, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, path, (*loc, i))
    return found


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
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1:1: the shot list must be a mapping with a `shots:` list (got {type(data).__name__})"
        )
    if "version" in data and data["version"] != 1:
        raise ConfigError(
            f"{_mark(path, find_node(root, ('version',)))}: version: unsupported schema version (got {data['version']!r})",
            hint="this mvgen reads version: 1",
        )
    problems = _duplicate_keys(root, path)
    try:
        shots = ShotList.model_validate(data)
    except ValidationError as exc:
        problems += _validation_problems(exc, path, root)
    if problems:
        _raise_all(problems)
    return shots, root


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
    node = find_node(loaded.root, loc) if loc else None
    return _mark(loaded.path, None if node is loaded.root else node)
