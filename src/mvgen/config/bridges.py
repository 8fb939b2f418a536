"""The shot list's rules for bridges and end frames that need no beat grid (schema.py runs them): a
bridge leads from the shot before, so the first shot cannot have one; a ``bridge_prompt`` needs a
bridge; a shot ends on one frame (``end_image:`` or ``end: next``).
The rules that need the grid (a bridge longer than a slot beside it) are the planner's (bridges.py)."""

from __future__ import annotations

from typing import Any


def is_bridge(transition: Any) -> bool:
    """Whether a ``transition:`` value is ``{bridge: N}``."""
    return getattr(transition, "kind", None) == "bridge"


def bridge_problem(shots: Any) -> tuple[tuple[str | int, ...], str] | None:
    """(place, message) of the first broken rule in ``shots`` (a ShotList), or None."""
    for i, shot in enumerate(shots.shots):
        if shot.end_image is not None and shot.end is not None:
            why = "a shot ends on its `end_image:` or on the next shot's first frame: drop one"
            return ("shots", i, "end"), why
        if i == 0 and is_bridge(shot.transition):
            return ("shots", 0, "transition"), (
                "a bridge leads from the shot before into this one, and the first shot has none: "
                "drop it, or put it on a later shot"
            )
        if shot.bridge_prompt is not None and not is_bridge(shot.transition or shots.timing.transition):
            return ("shots", i, "bridge_prompt"), (
                "this shot has no bridge into it: add `transition: {bridge: 1}` or drop `bridge_prompt:`"
            )
    return None
