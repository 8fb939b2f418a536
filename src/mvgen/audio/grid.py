"""The beat grid: small frozen data passed from analysis to planning. No librosa here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Below this a grid is reported as uncertain, with the fix (check the plot, or give the grid).
CONFIDENT = 0.5


@dataclass(frozen=True)
class GridConfidence:
    """How far to trust a tracked grid, each part 0..1 (1 = sure); ``overall`` is the weakest part.

    onsets: how clearly the music pulses at the tracked tempo (normalised autocorrelation of the
    onsets at that lag); tempo: how evenly the beats follow each other (1 - a beat-to-beat jitter
    of 8 %); octave: how much better this pulse level scored than the next best one (0 = a tie).
    """

    onsets: float
    tempo: float
    octave: float
    alternative_bpm: float | None = None

    @property
    def overall(self) -> float:
        return min(self.onsets, self.tempo, self.octave)

    @property
    def uncertain(self) -> bool:
        return self.overall < CONFIDENT

    def to_json(self) -> dict[str, Any]:
        alt = None if self.alternative_bpm is None else round(self.alternative_bpm, 1)
        return {
            "overall": round(self.overall, 3), "onsets": round(self.onsets, 3), "tempo": round(self.tempo, 3),
            "octave": round(self.octave, 3), "alternative_bpm": alt,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GridConfidence:
        alt = data.get("alternative_bpm")
        return cls(
            float(data["onsets"]),
            float(data["tempo"]),
            float(data["octave"]),
            None if alt is None else float(alt),
        )


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
    # Where the tempo moves: (time_s, bpm) through the track, and tempo_bpm is its median.
    tempo_curve: tuple[tuple[float, float], ...] = ()
    confidence: GridConfidence | None = None  # None for a grid the user gave (--bpm, a beats file)

    @property
    def tempo_range_bpm(self) -> tuple[float, float]:
        """The 10th and 90th percentile of the local tempo (both tempo_bpm when it is steady)."""
        if not self.tempo_curve:
            return self.tempo_bpm, self.tempo_bpm
        lo, hi = np.percentile([b for _, b in self.tempo_curve], [10, 90])
        return float(lo), float(hi)

    def uncertainty(self) -> str | None:
        """The warning for an uncertain grid, with the fix; None when it is sure (or user-given)."""
        if self.confidence is None or not self.confidence.uncertain:
            return None
        lo, hi = self.tempo_range_bpm
        tempo = f"{lo:.0f}-{hi:.0f} BPM" if hi - lo >= 1.0 else f"{self.tempo_bpm:.0f} BPM"
        if self.confidence.alternative_bpm is not None and self.confidence.octave < CONFIDENT:
            tempo += f", or {self.confidence.alternative_bpm:.0f}"
        return (
            f"beat grid uncertain (tempo {tempo}, confidence {self.confidence.overall:.2f}): "
            "check `mvgen beats --plot`, or give `--bpm` / a beats file"
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of ``mvgen beats --json`` (DESIGN.md), plus bar size, source, the tempo
        curve where the tempo moves and the tracker's confidence."""
        return {
            "tempo_bpm": round(self.tempo_bpm, 3),
            "duration_s": round(self.duration_s, 6),
            "beats_s": [round(t, 6) for t in self.beats_s],
            "downbeats_s": [round(t, 6) for t in self.downbeats_s],
            "sections_s": [round(t, 6) for t in self.sections_s],
            "beats_per_bar": self.beats_per_bar,
            "source": self.source,
            "tempo_curve": [[round(t, 3), round(b, 2)] for t, b in self.tempo_curve],
            "confidence": None if self.confidence is None else self.confidence.to_json(),
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
            tempo_curve=tuple((float(t), float(b)) for t, b in data.get("tempo_curve", ())),
            confidence=GridConfidence.from_json(data["confidence"]) if data.get("confidence") else None,
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
