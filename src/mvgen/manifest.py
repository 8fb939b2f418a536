"""The manifest's records, typed: what ``OUT.json`` holds (its keys are a contract, see DESIGN.md and
the README's Outputs), built by records.py for renders and previews, and read back typed by the
report, the OTIO export and the up-to-date check. Field order is the JSON's key order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

_FROZEN = ConfigDict(frozen=True, extra="forbid")
Number = int | float  # kept as given: a 24 stays 24 and 24.0 stays 24.0 in the JSON


class TakeRecord(BaseModel):
    """One take of a shot with several: its seed, clip and scores (media/score.py's metrics)."""

    model_config = ConfigDict(frozen=True, extra="allow")  # the metrics: black, frozen, flicker, ...

    take: int
    seed: int
    cache_key: str

    @property
    def score(self) -> float:
        """The take's score (the best is used); among the metrics, in their order in the JSON."""
        return float((self.model_extra or {})["score"])


class Placement(BaseModel):
    """Where a slot was generated with ``--backend ray``."""

    model_config = _FROZEN

    pid: int
    worker: int
    started: Number
    finished: Number
    attempts: int


class LoraRecord(BaseModel):
    """A LoRA a slot ran with: its file, content hash and weight."""

    model_config = _FROZEN

    path: str
    sha256: str
    weight: Number


class StillRecord(BaseModel):
    """A still a slot used: its file, content hash, and whose (``image``: the shot's own; else the
    cast member's name)."""

    model_config = _FROZEN

    path: str
    sha256: str
    role: str


class ShotRecord(BaseModel):
    """A slot of a render: its timing, its clip and take, whether it came from the cache."""

    model_config = _FROZEN

    id: str
    prompt: str
    negative: str
    seed: int
    start_s: Number
    end_s: Number
    start_frame: int
    end_frame: int
    num_frames: int  # generated
    play_frames: int  # shown
    repeat: int
    segment: int
    transition: str
    blend_frames: int
    image_sha256: str | None
    colour_drift: dict[str, Number] | None
    cache_key: str | None
    cached: bool
    seconds: Number
    take: int
    takes: list[TakeRecord] | None
    loras: list[LoraRecord]  # [] without
    ray: Placement | None = None
    retime: str = "nearest"  # how frames between generated ones were made (an older manifest's: nearest)
    cast: list[str] = []  # the cast members in the shot
    image: StillRecord | None = None  # its start frame's still (the shot's own, or a cast member's picture)
    reference_mode: str = ""  # how the cast's pictures reached the model: vace (reference images) | start | "" (they only scored takes)
    identity: Number | None = None  # the chosen take's likeness to its cast's pictures, 0..1 (media/score.py)
    end: str = (
        ""  # what it was drawn to end on: next (the next shot's first frame; every bridge) | image | ""
    )
    end_image: StillRecord | None = None  # its end still (`end_image:`)
    end_sha256: str | None = None  # the digest of the frame it ends on (in its cache key)
    windows: int = 1  # denoising windows of the one run that made its clip (diffusion forcing); 1: one call


class PreviewShotRecord(BaseModel):
    """A slot of an animatic: no clip, so no key, take or seconds."""

    model_config = _FROZEN

    id: str
    prompt: str
    seed: int
    start_s: Number
    end_s: Number
    start_frame: int
    end_frame: int
    num_frames: int
    transition: str
    blend_frames: int
    takes: int
    end: str = ""  # what it is drawn to end on: next | image | "" (as ShotRecord's)


class AudioRecord(BaseModel):
    model_config = _FROZEN

    path: str
    sha256: str
    duration_s: Number
    tempo_bpm: Number
    beats_source: str
    sample_rate: int
    channels: int
    beat_confidence: Number | None = None  # the tracker's, 0..1 (None: a grid the user gave)


class VideoRecord(BaseModel):
    model_config = _FROZEN

    path: str
    width: int
    height: int
    fps: Number
    frames: int
    duration_s: Number
    gen_width: int
    gen_height: int
    native_fps: Number


class GenerationRecord(BaseModel):
    model_config = _FROZEN

    steps: int
    guidance: Number
    backend: str
    overlap: bool
    quality: str
    cache: str
    compile: bool
    attention: str


class OutputRecord(BaseModel):
    model_config = _FROZEN

    sha256: str
    render_key: str
    reencoded: bool


class Manifest(BaseModel):
    """A render's ``OUT.json``."""

    model_config = _FROZEN

    mvgen_version: str
    created_utc: str
    shotlist: str
    model: dict[str, str]  # id, name, revision (+ i2v_revision), family
    audio: AudioRecord
    video: VideoRecord
    generation: GenerationRecord
    fit: str
    totals: dict[str, int]  # counts.py: slots, shots, generated, cached, takes
    shots: list[ShotRecord]
    timings_s: dict[str, Number]
    output: OutputRecord
    verified: dict[str, Any]  # what the read-back of the written file saw
    report: dict[str, str] | None = None  # html, contact_sheet, beat_plot
    otio: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _json(self, optional=("otio",))


class PreviewManifest(BaseModel):
    """An animatic's ``OUT.preview.json``."""

    model_config = _FROZEN

    mvgen_version: str
    preview: Literal[True]
    created_utc: str
    shotlist: str
    audio: AudioRecord
    video: VideoRecord
    fit: str
    shots: list[PreviewShotRecord]
    timings_s: dict[str, Number]
    verified: dict[str, Any]
    otio: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _json(self, optional=("otio",))


def _json(record: BaseModel, optional: tuple[str, ...]) -> dict[str, Any]:
    """The JSON form: unset optional keys (and a slot's ``ray`` off Ray) are left out, not null."""
    data = record.model_dump(mode="json")
    for key in optional:
        if data.get(key) is None:
            data.pop(key, None)
    for row in data.get("shots", ()):
        if "ray" in row and row["ray"] is None:
            del row["ray"]
    return data


def read_manifest(path: Path) -> Manifest | None:
    """A render's manifest read back; None when there is none, or it is not one this mvgen wrote
    (unreadable, a preview's, an older version's shape)."""
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None
