"""A shot list's cast: the ``{name}`` references in prompts, the prompt a model reads once each
member's description is written in, and the checks on names (schema.py's ``ShotList`` calls these;
they take its objects by their fields, so this module imports nothing of the schema)."""

from __future__ import annotations

import re
from typing import Any

from mvgen.wording import did_you_mean

CAST_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
# `{name}` in a prompt: a cast member written into it (`{{` and `}}` are literal braces)
_CAST_REF = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def cast_refs(prompt: str) -> list[tuple[str | None, str]]:
    """The ``{name}`` references of a prompt in order: ``(name, text)``; name None for a brace that is
    not part of one (unmatched, or ``{}``), "" for a literal ``{{`` / ``}}``."""
    out: list[tuple[str | None, str]] = []
    for m in _CAST_REF.finditer(prompt):
        text = m.group(0)
        if text in ("{{", "}}"):
            out.append(("", text))
        elif m.group(1) is not None and m.group(1).strip():
            out.append((m.group(1).strip(), text))
        else:
            out.append((None, text))
    return out


def members_of(shot: Any) -> list[str]:
    """The cast members a shot uses, in order: those written in its prompt, then its `cast:` list."""
    names = [name for name, _ in cast_refs(shot.prompt) if name] + list(shot.cast or ())
    return list(dict.fromkeys(names))


def full_prompt(shot: Any, cast: dict[str, Any], style: str) -> str:
    """A shot's prompt as the model reads it: each ``{name}`` written out as that member's
    description (``{{``/``}}`` as braces), the descriptions of `cast:` members not written in it
    appended, then the style."""
    written = {name for name, _ in cast_refs(shot.prompt) if name}

    def sub(m: re.Match) -> str:
        text = m.group(0)
        return text[0] if text in ("{{", "}}") else cast[m.group(1).strip()].description

    parts = [_CAST_REF.sub(sub, shot.prompt)]
    parts += [cast[n].description for n in members_of(shot) if n not in written]
    if style:
        parts.append(style)
    return ", ".join(parts)


def cast_problem(shots: Any) -> tuple[tuple[str | int, ...], str] | None:
    """The first place where a cast name is malformed, a ``{name}`` or `cast:` entry is no member, or
    a brace is unmatched, and what is wrong there (None: all is well)."""
    for name in shots.cast:
        if not CAST_NAME.match(name):
            why = f"a cast name starts with a letter, then letters, digits, - or _ (at most 32; got {name!r})"
            return ("cast", name), why
    known = sorted(shots.cast)
    listing = f"known: {', '.join(known)}" if known else "the shot list has no `cast:`"
    for i, shot in enumerate(shots.shots):
        at = ("shots", i, "prompt")
        for name, text in cast_refs(shot.prompt):
            if name is None:
                return (
                    at,
                    f"unmatched {text!r}: write {{name}} for a cast member ({listing}), {{{{ or }}}} for a brace",
                )
            if name and name not in shots.cast:
                return at, f"unknown cast member {{{name}}} ({listing}){did_you_mean(name, known)}"
        for j, name in enumerate(shot.cast or ()):
            if name not in shots.cast:
                at = ("shots", i, "cast", j)
                return at, f"unknown cast member {name!r} ({listing}){did_you_mean(name, known)}"
    return None
