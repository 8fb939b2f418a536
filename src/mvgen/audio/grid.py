"""The beat grid: small frozen data passed from analysis to planning. No librosa here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BeatGrid:
    """Where the beats are. All times in seconds from the start of the track."""

    tempo_bpm: float
    duration_s: float
    beats_s: tuple[float, ...]
    downbeats_s: tuple[float, ...]
    sections_s: tuple[float, ...] = ()
    beats_per_bar: int = 4
    source: str = "librosa"

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of ``mvgen beats --json`` (DESIGN.md), plus bar size and source."""
        return {
            "tempo_bpm": round(self.tempo_bpm, 3),
            "duration_s": round(self.duration_s, 6),
            "beats_s": [round(t, 6) for t in self.beats_s],
            "downbeats_s": [round(t, 6) for t in self.downbeats_s],
            "sections_s": [round(t, 6) for t in self.sections_s],
            "beats_per_bar": self.beats_per_bar,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BeatGrid:
        return cls(
            tempo_bpm=float(data["tempo_bpm"]),
            duration_s=float(data["duration_s"]),
            beats_s=tuple(float(t) for t in data["beats_s"]),
            downbeats_s=tuple(float(t) for t in data["downbeats_s"]),
            sections_s=tuple(float(t) for t in data.get("sections_s", ())),
            beats_per_bar=int(data.get("beats_per_bar", 4)),
            source=str(data.get("source", "librosa")),
        )

    @property
    def beat_period_s(self) -> float:
        return 60.0 / self.tempo_bpm


class GridAxis:
    """A continuous position <-> time map through a list of grid times (beats or downbeats).

    Position p is "grid units since the first grid point": integer p is exactly on a grid time,
    fractional p interpolates, and positions beyond either end extrapolate at the mean spacing, so
    a shot list can run past the last detected beat (the song's fade-out) and still be planned.
    """

    def __init__(self, times: tuple[float, ...], period_s: float) -> None:
        if len(times) == 0:
            times = (0.0,)
        self.times = np.asarray(times, dtype=np.float64)
        self.period = float(np.median(np.diff(self.times))) if len(self.times) > 1 else float(period_s)
        self.period = self.period if self.period > 0 else float(period_s)

    def time_at(self, pos: float) -> float:
        n = len(self.times)
        if pos <= 0:
            return float(self.times[0] + pos * self.period)
        if pos >= n - 1:
            return float(self.times[-1] + (pos - (n - 1)) * self.period)
        return float(np.interp(pos, np.arange(n), self.times))

    def pos_at(self, t: float) -> float:
        n = len(self.times)
        if t <= self.times[0]:
            return float((t - self.times[0]) / self.period)
        if t >= self.times[-1]:
            return float((n - 1) + (t - self.times[-1]) / self.period)
        return float(np.interp(t, self.times, np.arange(n)))

    def nearest_time(self, t: float) -> float:
        """The grid time (or its extrapolation) nearest to t."""
        return self.time_at(round(self.pos_at(t)))
