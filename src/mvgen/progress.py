"""Progress events passed from the library to whatever displays them. Stdlib only.

The pipeline never prints: it calls a ``ProgressCallback`` with small frozen events. The CLI's
console turns them into a rich display (TTY), timestamped lines (cron) or JSON lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """One thing that happened. ``event`` names it; the other fields are filled when they apply.

    Events: ``stage`` (a pipeline stage starts), ``shot_start``, ``step`` (a denoising step),
    ``shot_done``, ``shot_cached``, ``shot_failed``, ``encode`` (frames written during assembly),
    ``done``, ``info``, ``warning`` (a retry or fallback), ``job_start``/``job_end`` (batches).
    """

    event: str
    stage: str | None = None
    shotlist: str | None = None
    shot: str | None = None
    index: int | None = None
    total: int | None = None
    step: int | None = None
    steps: int | None = None
    seconds: float | None = None
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v not in (None, {})}
        return data


ProgressCallback = Callable[[ProgressEvent], None]


def null_progress(event: ProgressEvent) -> None:
    """The default: progress goes nowhere."""
