"""The shot list, schema version 1: the single source of truth for keys, defaults and bounds.

Every key a user can write lives here with its default; ``configs/reference.yaml`` mirrors it and
a test keeps the two in step.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

Unit = Literal["beats", "bars", "seconds", "sections"]
Fit = Literal["loop", "stretch", "trim"]

DEFAULT_MODEL = "wan2.1-t2v-1.3b"

_LENGTH_RE = re.compile(
    r"^\s*(?P<value>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>beats?|bars?|s|sec|secs|seconds?)?\s*$", re.IGNORECASE
)
# "section" / "2 sections": until the next (2nd) structural boundary of the track.
_SECTIONS_RE = re.compile(r"^\s*(?P<count>\d+)?\s*sections?\s*$", re.IGNORECASE)
_UNIT_ALIASES = {
    "beat": "beats",
    "beats": "beats",
    "bar": "bars",
    "bars": "bars",
    "s": "seconds",
    "sec": "seconds",
    "secs": "seconds",
    "second": "seconds",
    "seconds": "seconds",
}


class LocatedValueError(ValueError):
    """A validator's error about a place below the model it checks (e.g. ``shots[3].id``): the
    loader reads ``loc`` to point at that line instead of the whole model."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class _Strict(BaseModel):
    # extra="forbid": a misspelt key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Length(_Strict):
    """A shot length: a positive value and its unit (``None``: the shot list's ``timing.unit``)."""

    value: float = Field(gt=0)
    unit: Unit | None = None

    def resolved_unit(self, default: Unit) -> Unit:
        return self.unit or default


def parse_length(raw: object) -> Length:
    """``8`` / ``8.0`` / ``"2 bars"`` / ``"3.5s"`` / ``"4 beats"`` -> ``Length``. Raises ValueError."""
    if isinstance(raw, bool):
        raise ValueError(f"must be a number or a string like '2 bars' (got {raw!r})")
    if isinstance(raw, int | float):
        if raw <= 0:
            raise ValueError(f"must be > 0 (got {raw!r})")
        return Length(value=float(raw))
    if isinstance(raw, str):
        sections = _SECTIONS_RE.match(raw)
        if sections:
            count = int(sections["count"] or 1)
            if count <= 0:
                raise ValueError(f"must be at least 1 section (got {raw!r})")
            return Length(value=float(count), unit="sections")
        m = _LENGTH_RE.match(raw)
        if not m:
            raise ValueError(
                f"must be a number, or a number with a unit: '8 beats', '2 bars', '3.5s', 'section' (got {raw!r})"
            )
        value = float(m["value"])
        if value <= 0:
            raise ValueError(f"must be > 0 (got {raw!r})")
        unit = _UNIT_ALIASES[m["unit"].lower()] if m["unit"] else None
        return Length(value=value, unit=unit)
    raise ValueError(f"must be a number or a string like '2 bars' (got {raw!r})")


class AudioSettings(_Strict):
    """The track, and optionally a beat grid to use instead of detection."""

    path: str = Field(min_length=1, description="the audio file, relative to the shot list's folder")
    bpm: float | None = Field(None, gt=0, le=400, description="fixed tempo: skips beat detection")
    offset_s: float | None = Field(None, ge=0, description="time of the first beat, with bpm")
    beats_per_bar: int = Field(4, ge=1, le=16, description="bar length in beats for bpm / a plain beats file")
    beats_file: str | None = Field(None, min_length=1, description="one beat time per line: skips detection")

    @model_validator(mode="after")
    def _one_override(self) -> AudioSettings:
        if self.bpm is not None and self.beats_file is not None:
            raise ValueError("set either bpm (with offset_s) or beats_file, not both")
        if self.offset_s is not None and self.bpm is None:
            raise ValueError("offset_s goes with bpm")
        return self


def _audio_form(value: object) -> str:
    return "audio-settings" if isinstance(value, dict | AudioSettings) else "audio-path"


# `audio:` is a path or a mapping; the discriminator sends a mapping straight to AudioSettings so
# that its errors name the field (audio.bpm), not "not a valid string".
AudioValue = Annotated[
    Annotated[str, Field(min_length=1), Tag("audio-path")] | Annotated[AudioSettings, Tag("audio-settings")],
    Discriminator(_audio_form),
]


class VideoSettings(_Strict):
    """Output size and frame rate. Sizes must fit the model's size multiple (checked at plan time)."""

    width: int = Field(832, ge=16, le=7680, description="output width in pixels")
    height: int = Field(480, ge=16, le=4320, description="output height in pixels")
    fps: float = Field(24.0, gt=0, le=120, description="output frame rate (constant)")


class GenerationSettings(_Strict):
    """Sampler settings. ``None``: the model preset's value."""

    steps: int | None = Field(None, ge=1, le=500, description="denoising steps")
    guidance: float | None = Field(None, ge=0, le=50, description="classifier-free guidance scale")
    seed: int = Field(0, ge=0, lt=2**63, description="shot i (0-based) uses seed + i unless it sets its own")


class TimingSettings(_Strict):
    unit: Unit = Field("beats", description="unit of a plain-number `length`")
    fit: Fit = Field("loop", description="loop | stretch | trim: how the shot list covers the song")
    length: float = Field(8, gt=0, description="length of a shot that sets none, in `unit`")


class Shot(_Strict):
    id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    prompt: str = Field(min_length=1, max_length=4000)
    length: Length | None = None
    seed: int | None = Field(None, ge=0, lt=2**63)

    @field_validator("length", mode="before")
    @classmethod
    def _parse_length(cls, raw: object) -> object:
        if raw is None or isinstance(raw, Length | dict):
            return raw
        return parse_length(raw)


class ShotList(_Strict):
    version: Literal[1] = 1
    title: str | None = None
    model: str = Field(DEFAULT_MODEL, min_length=1, description="preset name | repo id | local folder")
    audio: AudioValue | None = Field(None, description="a path, or {path, bpm, offset_s | beats_file}")
    output: str | None = Field(None, min_length=1, description="relative to the shot list's folder")
    video: VideoSettings = VideoSettings()
    generation: GenerationSettings = GenerationSettings()
    style: str = Field("", max_length=4000, description="appended to every prompt")
    negative: str = Field("", max_length=4000, description="negative prompt for every shot")
    timing: TimingSettings = TimingSettings()
    shots: list[Shot] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _unique_ids(self) -> ShotList:
        seen: dict[str, int] = {}
        for i, shot in enumerate(self.shots):
            if shot.id is None:
                continue
            if shot.id in seen:
                raise LocatedValueError(
                    ("shots", i, "id"), f"duplicate id {shot.id!r} (first used by shots[{seen[shot.id]}])"
                )
            seen[shot.id] = i
        return self

    def audio_settings(self) -> AudioSettings | None:
        return AudioSettings(path=self.audio) if isinstance(self.audio, str) else self.audio

    def shot_ids(self) -> list[str]:
        """Ids as used everywhere else: the user's, or ``shot-001``, ``shot-002``, ..."""
        return [s.id or f"shot-{i + 1:03d}" for i, s in enumerate(self.shots)]
