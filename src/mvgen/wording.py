"""How mvgen words what it tells a user: counts with their plurals, and "did you mean" for a near
miss of a known word. Stdlib only: every layer may import this module."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 shot``, ``2 shots``, ``0 shots`` (``words``: an irregular plural)."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known word nearest to ``word`` when it looks like a typo of it (case aside), else None."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    found = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def did_you_mean(word: str, known: Iterable[str], *, show=lambda w: f"`{w}`") -> str:
    """``"; did you mean `bars`?"`` for a near miss of a known word, else ``""``."""
    match = closest(word, known)
    return f"; did you mean {show(match)}?" if match is not None and match != word else ""
