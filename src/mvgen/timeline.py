"""The plan's types and the timing rules every stage shares: a ``RenderPlan`` of ``PlannedShot``
slots (planner.py makes it), how many native frames a slot needs, which clip frame an output frame
shows, what a chained shot continues. Pure functions, no I/O, no torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from mvgen.errors import ConfigError

PLAN_VERSION = 1
TAKE_STRIDE = 1_000_003  # seed distance between two takes of a shot (far from the seed + i of neighbours)
SEED_LIMIT = 2**63
MAX_PLANNED_SHOTS = 20_000


def take_seed(seed: int, take: int) -> int:
    """The seed of take ``take`` (0-based) of a shot whose own seed is ``seed``."""
    return (seed + take * TAKE_STRIDE) % SEED_LIMIT


def timecode(seconds: float) -> str:
    """``m:ss.ss``, as the cut sheet, the animatic and the report show times."""
    m, s = divmod(max(seconds, 0.0), 60.0)
    return f"{int(m)}:{s:05.2f}"


class FieldError(ConfigError):
    """A ConfigError about one shot-list field; the caller adds the file, line and column."""

    def __init__(self, loc: tuple[str | int, ...], message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.loc = loc


@dataclass(frozen=True)
class PlannedShot:
    index: int  # position in the video (0-based)
    id: str
    source_index: int  # position in the shot list
    repeat: int  # 0 on the first pass through the list, 1 on the second (fit: loop) ...
    prompt: str  # the full prompt, style appended
    negative: str
    seed: int
    start_s: float
    end_s: float
    start_frame: int  # output frames [start_frame, end_frame)
    end_frame: int
    slot_frames: int  # the slot's full length in output frames (> end-start when cut at the song's end)
    num_frames: int  # frames generated at the model's native fps
    length_beats: float
    chain: bool = False  # generated from the previous slot's last frame (transition: chain)
    blend: str = "cut"  # how assembly joins it to the shot before: cut | crossfade | zoom
    blend_frames: int = 0  # the blend's length in output frames, centred on this shot's start
    camera: dict[str, Any] | None = None  # {"zoom": [start, end], "pan": [start, end], "pulse": p}
    segment: int = 0  # > 0: a chained continuation of a shot longer than one model call
    span: tuple[int, int] | None = None  # (start frame, frames) of the whole shot a segment belongs to
    takes: int = 1  # seeds tried; the best-scoring take is used (see take_seeds)
    # Frames of the clip the slot shows, from its first: as many as the slot lasts at the model's
    # native speed, or all of them when the clip is shorter (it is then spread over the slot,
    # slowed down, and the plan warns; see source_frame). 0: all ``num_frames`` (an older plan).
    play_frames: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def shown_frames(self) -> int:
        """How many of the clip's frames the slot shows."""
        return min(self.play_frames or self.num_frames, self.num_frames)

    def speed(self, fps: float, native_fps: float) -> float:
        """How fast the slot plays its clip against the model's native speed (1: as generated;
        below 1: slowed down, its clip too short for it; see ``source_frame``)."""
        if self.shown_frames >= frames_needed(self.slot_frames, fps, native_fps):
            return 1.0
        return (self.shown_frames / native_fps) / (self.slot_frames / fps)

    @property
    def transition(self) -> str:
        """How the shot begins: chain | cut | crossfade | zoom."""
        return "chain" if self.chain else self.blend

    def take_seeds(self) -> list[int]:
        """Take k (0-based) uses seed + k * TAKE_STRIDE: take 1 is the shot's own seed, so a shot with
        one take, or a take pinned with ``mvgen pick``, renders exactly as before."""
        return [take_seed(self.seed, k) for k in range(self.takes)]


@dataclass(frozen=True)
class RenderPlan:
    model: str
    family: str
    native_fps: float
    width: int  # output
    height: int
    fps: float
    gen_width: int  # what the model renders; upscaled to width x height when smaller
    gen_height: int
    steps: int
    guidance: float
    max_sequence_length: int
    fit: str
    tempo_bpm: float
    beats_source: str  # librosa | bpm | beats_file
    audio_duration_s: float
    duration_s: float
    total_frames: int
    shots: tuple[PlannedShot, ...]
    version: int = PLAN_VERSION
    beats_s: tuple[float, ...] = ()  # the grid's beats (camera pulses land on them)
    beats_per_bar: int = 4
    sections_s: tuple[float, ...] = ()  # the grid's section boundaries (the preview colours by them)
    crf: int = 18  # x264 settings of the output (`output: {crf, preset}`)
    x264_preset: str = "medium"
    encode_threads: int = 0  # 0: one per core
    quality: str = "final"  # GPU levers (`generation:`): draft | final, step cache, compile, attention
    step_cache: str = "none"
    step_cache_threshold: float = 0.05
    compile: bool = False
    attention: str = "auto"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["shots"] = [s.to_json() for s in self.shots]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RenderPlan:
        names = {f.name for f in fields(PlannedShot)} - {"span"}  # `mvgen plan --json` adds columns
        shots = tuple(
            PlannedShot(**{k: v for k, v in s.items() if k in names}, span=tuple(s["span"]) if s.get("span") else None)
            for s in data["shots"]
        )  # fmt: skip
        top = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in top}, "shots": shots,
                      "beats_s": tuple(data.get("beats_s", ())),
                      "sections_s": tuple(data.get("sections_s", ()))})  # fmt: skip

    def unique_shots(self) -> list[PlannedShot]:
        """One shot per distinct generation (loop repeats share a clip)."""
        seen: dict[tuple[int, int, int], PlannedShot] = {}
        for s in self.shots:
            # A chained shot's picture depends on the slot before it: each slot is its own.
            seen.setdefault((s.source_index, s.num_frames, s.index if s.chain else -1), s)
        return list(seen.values())


def frames_needed(slot_frames: int, fps: float, native_fps: float) -> int:
    """Frames at the model's native rate that fill ``slot_frames`` output frames at ``fps``: the
    frames the slot shows when output frame k shows native frame ``floor(k * native / fps)``."""
    return math.floor((max(1, slot_frames) - 1) * native_fps / fps + 1e-9) + 1


def source_frame(k: int, shown: int, slot_frames: int, fps: float, native_fps: float) -> int:
    """The clip frame that output frame ``k`` of a slot (0-based, from its start) shows. A clip
    with the frames the slot needs plays at the model's native speed (frame ``k * native / fps``);
    a shorter one (over the model's maximum) is spread over the slot, slowed down. Past the slot's
    end (the outgoing half of a blend) the clip runs on at the same pace into the frames the slot
    did not show; the reader holds its last frame after that."""
    k = max(k, 0)
    if shown >= frames_needed(slot_frames, fps, native_fps):
        return math.floor(k * native_fps / fps + 1e-9)
    return k * shown // max(1, slot_frames)


def anchor_root(plan: RenderPlan, index: int) -> int | None:
    """The slot whose colours chained slot ``index`` is anchored to (media/colour.py): the first
    of its run of chained slots with the same prompt (a long shot's segments, a prompt chained to
    itself), where colour drift would otherwise compound. None: not anchored: a cut, or a chained
    shot with a prompt of its own, which starts on the previous frame and turns into its own
    prompt's colours (anchoring it would hold it in the previous shot's)."""
    shots = plan.shots

    def continues(i: int) -> bool:
        return i > 0 and shots[i].chain and shots[i - 1].prompt == shots[i].prompt

    if not continues(index):
        return None
    root = index
    while continues(root):
        root -= 1
    return root


def last_shown_frame(shot: PlannedShot, fps: float, native_fps: float) -> int:
    """The clip frame a slot shows last, right before the next cut (a chained shot starts there)."""
    return source_frame(shot.slot_frames - 1, shot.shown_frames, shot.slot_frames, fps, native_fps)
