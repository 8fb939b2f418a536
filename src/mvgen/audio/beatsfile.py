"""Manual beat grids: a fixed tempo and offset, or a beats file (one time in seconds per line, an
optional second column with the position in the bar, 1 = downbeat: what DAWs and Sonic Visualiser
export). Overrides skip detection entirely."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvgen.audio.grid import BeatGrid
from mvgen.errors import ConfigError

MAX_BEATS_FILE_BYTES = 5 * 1024 * 1024
_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class BeatOverride:
    """A grid the user gives instead of detection: ``bpm`` (+ ``offset_s``) or ``beats_file``."""

    bpm: float | None = None
    offset_s: float = 0.0
    beats_per_bar: int = 4
    beats_file: Path | None = None
    times: tuple[float, ...] = ()
    positions: tuple[int, ...] = ()  # per time, position in bar when the file gives it

    @property
    def source(self) -> str:
        return "beats_file" if self.beats_file else "bpm"


def read_beats_file(path: Path, *, beats_per_bar: int = 4) -> BeatOverride:
    """Parse a beats file; ``ConfigError`` naming ``FILE:LINE`` for anything it cannot use."""
    if not path.is_file():
        raise ConfigError(f"{path}: beats file not found")
    try:
        if path.stat().st_size > MAX_BEATS_FILE_BYTES:
            raise ConfigError(f"{path}: too large for a beats file")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; a beats file has one time in seconds per line") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the beats file: {exc.strerror}") from None
    times: list[float] = []
    positions: list[int] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cols = [c for c in _SPLIT.split(line) if c]
        try:
            t = float(cols[0])
        except ValueError:
            raise ConfigError(f"{path}:{n}: not a time in seconds (got {cols[0]!r})") from None
        if not np.isfinite(t) or t < 0:
            raise ConfigError(f"{path}:{n}: a beat time must be a number of seconds >= 0 (got {cols[0]!r})")
        if times and t <= times[-1]:
            raise ConfigError(f"{path}:{n}: beat times must increase ({t:g} after {times[-1]:g})")
        if len(cols) > 1:
            try:
                pos = int(float(cols[1]))
            except ValueError:
                raise ConfigError(
                    f"{path}:{n}: the position in the bar must be a number (got {cols[1]!r})"
                ) from None
            if pos < 1:
                raise ConfigError(f"{path}:{n}: the position in the bar counts from 1 (got {cols[1]!r})")
            positions.append(pos)
        elif positions:
            raise ConfigError(f"{path}:{n}: this line has no position in the bar, earlier lines do")
        times.append(t)
    if len(times) < 2:
        raise ConfigError(f"{path}: a beats file needs at least 2 beat times (found {len(times)})")
    return BeatOverride(
        beats_file=path, beats_per_bar=beats_per_bar, times=tuple(times), positions=tuple(positions)
    )


def override_grid(o: BeatOverride, duration_s: float) -> BeatGrid:
    """The BeatGrid of an override over a track of ``duration_s``."""
    if o.beats_file is not None:
        times = np.array([t for t in o.times if t < duration_s])
        if len(times) < 2:
            raise ConfigError(
                f"{o.beats_file}: fewer than 2 of its beats fall inside the track ({duration_s:.2f} s)"
            )
        if o.positions:
            pos = np.array(o.positions[: len(times)])
            downbeats = times[pos == 1]
            per_bar = int(pos.max())
        else:
            downbeats, per_bar = times[:: o.beats_per_bar], o.beats_per_bar
        slope = float(np.polyfit(np.arange(len(times)), times, 1)[0])
        tempo = 60.0 / slope
    else:
        assert o.bpm is not None
        if o.offset_s >= duration_s:
            raise ConfigError(f"offset_s {o.offset_s:g} is past the end of the track ({duration_s:.2f} s)")
        period = 60.0 / o.bpm
        times = o.offset_s + period * np.arange(int((duration_s - o.offset_s) / period) + 1)
        downbeats, per_bar, tempo = times[:: o.beats_per_bar], o.beats_per_bar, o.bpm
    if len(downbeats) == 0:
        downbeats = times[:1]
    return BeatGrid(
        tempo_bpm=float(tempo),
        duration_s=duration_s,
        beats_s=tuple(float(t) for t in times),
        downbeats_s=tuple(float(t) for t in downbeats),
        sections_s=(),
        beats_per_bar=per_bar,
        source=o.source,
    )
