"""Planning: (shot list, beat grid, model preset) -> RenderPlan. Pure functions, no I/O, no torch.

The song is the timeline. The first shot starts at 0; every later cut falls on the output frame
nearest to its beat (for bar lengths, its downbeat). ``fit`` decides how the shot list covers
the song: ``loop`` repeats it, ``stretch`` scales it, ``trim`` ends the video after the last shot.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from mvgen.audio.grid import BeatGrid, GridAxis
from mvgen.config.presets import ModelPreset, generation_size
from mvgen.config.schema import ZOOM_BEATS, Blend, ShotList, Unit
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


DRAFT_SCALE = 0.5  # `quality: draft` generates at half the final size (per side)...
DRAFT_STEP_FRACTION = 1 / 3  # ...with a third of the steps...
DRAFT_MIN_STEPS = 4  # ...but at least this many (fewer than the final's only if it had more)
COMPILE_BUCKETS = 4  # `compile: true`: shot lengths rounded up to 1/4, 2/4, 3/4 or all of the maximum


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


def bucketed_frames(preset: ModelPreset, needed: int) -> int:
    """With torch.compile every new frame count is a new shape (a recompile): round the count up
    to one of ``COMPILE_BUCKETS`` lengths so a whole video compiles at most that many times."""
    frames = preset.valid_frames(needed)
    for q in range(1, COMPILE_BUCKETS + 1):
        bucket = preset.valid_frames(math.ceil(preset.max_frames * q / COMPILE_BUCKETS))
        if bucket >= frames:
            return bucket
    return frames


def check_size(shots: ShotList, preset: ModelPreset) -> tuple[int, int]:
    """The model's render size for the shot list's video size; ``FieldError`` when a rule breaks."""
    v = shots.video
    for key, value in (("width", v.width), ("height", v.height)):
        if value % 2:
            raise FieldError(
                ("video", key),
                f"must be even for H.264 yuv420p (got {value}): use {value - 1} or {value + 1}",
            )
    m = preset.size_multiple
    if preset.render_scale >= 1:
        for key, value in (("width", v.width), ("height", v.height)):
            if value % m:
                lo, hi = (value // m) * m, (value // m + 1) * m
                nearest = f"{lo} or {hi}" if lo > 0 else str(hi)
                raise FieldError(
                    ("video", key),
                    f"{key} {value} must be a multiple of {m} for {preset.family_label} "
                    f"(model {preset.name}): use {nearest}",
                )
    return generation_size(preset, v.width, v.height)


# The slowest tempo mvgen plans for: a shot shorter than one frame even at this tempo is rejected
# before the (slower) beat analysis runs.
SLOWEST_BPM = 30.0


def precheck_lengths(shots: ShotList) -> None:
    """Reject shots that are shorter than half an output frame at any tempo, without the audio."""
    half_frame = 0.5 / shots.video.fps
    longest_beat = 60.0 / SLOWEST_BPM
    ids = shots.shot_ids()
    for i, s in enumerate(shots.shots):
        value = s.length.value if s.length else shots.timing.length
        unit = s.length.resolved_unit(shots.timing.unit) if s.length else shots.timing.unit
        if unit == "sections":  # as long as the song's sections: known only after analysis
            continue
        most = {"beats": value * longest_beat, "bars": value * 4 * longest_beat, "seconds": value}[unit]
        if most < half_frame:
            raise FieldError(
                ("shots", i, "length"),
                f"shot {ids[i]!r} is shorter than one output frame at {shots.video.fps:g} fps; make it longer",
            )


class _Cutter:
    """Finds where a shot starting at an (ideal, on-grid) time ends."""

    def __init__(self, grid: BeatGrid) -> None:
        self.beats = GridAxis(grid.beats_s, grid.beat_period_s)
        self.bars = GridAxis(grid.downbeats_s, grid.beat_period_s * grid.beats_per_bar)
        # Section boundaries, then the end of the track: with none detected (a short track, an
        # override grid) a section runs to the end.
        self.sections = [t for t in grid.sections_s if t < grid.duration_s] + [grid.duration_s]
        self.min_section_s = grid.beat_period_s

    def end_of(self, t_start: float, value: float, unit: Unit) -> float:
        if unit == "sections":
            # The value-th boundary after the start; one less than a beat away does not count (a
            # shot starting just before a boundary would otherwise flash by).
            ahead = [t for t in self.sections if t > t_start + self.min_section_s]
            if not ahead:  # past the last boundary (a looped list): a section from here is the end
                return max(self.sections[-1], t_start + self.min_section_s)
            return ahead[min(len(ahead), max(1, round(value))) - 1]
        if unit == "beats":
            p0 = max(0.0, self.beats.pos_at(t_start))
            return self.beats.time_at(p0 + value)
        if unit == "bars":
            # On the downbeat nearest to N bars after the start (a tie: the later one), and never
            # before the next downbeat: from a mid-bar start the cut goes back onto a bar line and
            # the shot lasts N bars, give or take half a bar. The plan counts what it really is.
            p0 = max(0.0, self.bars.pos_at(t_start))
            end = max(math.floor(p0 + value + 0.5), math.floor(p0 + 1e-9) + 1)
            return self.bars.time_at(end)
        t = self.beats.nearest_time(t_start + value)
        if t <= t_start + 1e-6:
            t = self.beats.time_at(math.floor(self.beats.pos_at(t_start) + 1e-9) + 1)
        return t


def plan_video(
    shots: ShotList,
    grid: BeatGrid,
    preset: ModelPreset,
    *,
    model_name: str | None = None,
    extend_long: bool = False,
) -> RenderPlan:
    """The cut sheet. Raises ``FieldError`` for values that cannot be planned (bad size, shots
    shorter than one frame). ``extend_long`` (the model's image-to-video sibling is at hand): a
    slot longer than one model call is generated as chained segments instead of being slowed."""
    gen = shots.generation
    steps = gen.steps or preset.steps
    if gen.quality == "draft":  # same seeds and cuts; fewer steps at half the size
        check_size(shots, preset)  # the final render's rules hold for a draft too
        preset = preset.model_copy(update={"render_scale": preset.render_scale * DRAFT_SCALE})
        steps = min(steps, max(DRAFT_MIN_STEPS, math.ceil(steps * DRAFT_STEP_FRACTION)))
    frames_for = (lambda n: bucketed_frames(preset, n)) if gen.compile else preset.valid_frames
    gen_w, gen_h = check_size(shots, preset)
    fps = shots.video.fps
    unit_default = shots.timing.unit
    ids = shots.shot_ids()
    lengths = []
    for s in shots.shots:
        value = s.length.value if s.length else shots.timing.length
        unit = s.length.resolved_unit(unit_default) if s.length else unit_default
        lengths.append((value, unit))

    cutter = _Cutter(grid)
    duration = grid.duration_s
    fit = shots.timing.fit
    # (source index, repeat, ideal start, ideal end)
    cuts: list[tuple[int, int, float, float]] = []
    t = 0.0
    repeat = 0
    while True:
        for i, (value, unit) in enumerate(lengths):
            end = cutter.end_of(t, value, unit)
            cuts.append((i, repeat, t, end))
            t = end
            if fit == "loop" and t >= duration:
                break
            if len(cuts) > MAX_PLANNED_SHOTS:
                raise FieldError(
                    ("shots",), f"the plan needs more than {MAX_PLANNED_SHOTS} shots; use longer lengths"
                )
        repeat += 1
        if fit != "loop" or t >= duration:
            break

    scale = 1.0
    if fit == "stretch":
        scale = duration / t
        stretched = []
        prev = 0.0
        for k, (i, r, _, end) in enumerate(cuts):
            target = end * scale
            new_end = duration if k == len(cuts) - 1 else min(cutter.beats.nearest_time(target), duration)
            stretched.append((i, r, prev, new_end))
            prev = new_end
        cuts = stretched

    total_audio_frames = round(duration * fps)
    last_end_frame = round(cuts[-1][3] * fps)
    total_frames = (
        total_audio_frames if fit in ("loop", "stretch") else min(total_audio_frames, last_end_frame)
    )

    planned: list[PlannedShot] = []
    for k, (i, r, start, end) in enumerate(cuts):
        start_f = 0 if k == 0 else round(start * fps)
        end_f_full = round(end * fps)
        if fit == "stretch" and k == len(cuts) - 1:
            end_f_full = total_frames
        if start_f >= total_frames:
            break
        end_f = min(end_f_full, total_frames)
        if end_f <= start_f:
            raise FieldError(
                ("shots", i, "length"),
                f"shot {ids[i]!r} is shorter than one output frame at {fps:g} fps; make it longer",
            )
        src = shots.shots[i]
        prompt = src.prompt if not shots.style else f"{src.prompt}, {shots.style}"
        transition = src.transition or shots.timing.transition
        blend, blend_beats = "cut", 0.0
        if isinstance(transition, Blend):
            blend, blend_beats = transition.kind, transition.beats
        elif transition == "zoom":
            blend, blend_beats = "zoom", ZOOM_BEATS
        planned.append(
            PlannedShot(
                index=len(planned),
                id=ids[i],
                source_index=i,
                repeat=r,
                prompt=prompt,
                negative=shots.negative,
                seed=src.seed if src.seed is not None else shots.generation.seed + i,
                start_s=start_f / fps,
                end_s=end_f / fps,
                start_frame=start_f,
                end_frame=end_f,
                slot_frames=end_f_full - start_f,
                num_frames=0,  # set with the beats by _settle_frames, once the slots are final
                length_beats=0.0,
                chain=transition == "chain" and len(planned) > 0,  # the first shot has nothing before it
                # A chained shot continues the chosen picture before it: one take.
                takes=1 if transition == "chain" and planned else (src.takes or shots.generation.takes),
                blend=blend if planned else "cut",
                camera=(
                    {"zoom": list(src.camera.zoom), "pan": list(src.camera.pan), "pulse": src.camera.pulse}
                    if src.camera
                    else None
                ),
                blend_frames=round(blend_beats * scale * grid.beat_period_s * fps) if planned else 0,
            )
        )

    planned = _absorb_tail_sliver(planned, fps * grid.beat_period_s)
    if extend_long:
        planned = _extend_long_shots(planned, preset, cutter, fps)
    planned = _settle_frames(planned, cutter.beats, preset, fps, frames_for)
    planned = _fit_blends(planned)
    return RenderPlan(
        model=model_name or preset.name,
        family=preset.family,
        native_fps=preset.fps,
        width=shots.video.width,
        height=shots.video.height,
        fps=fps,
        gen_width=gen_w,
        gen_height=gen_h,
        steps=steps,
        guidance=shots.generation.guidance if shots.generation.guidance is not None else preset.guidance,
        max_sequence_length=preset.max_sequence_length,
        fit=fit,
        tempo_bpm=grid.tempo_bpm,
        beats_source=grid.source,
        audio_duration_s=duration,
        duration_s=total_frames / fps,
        total_frames=total_frames,
        shots=tuple(planned),
        beats_s=tuple(round(b, 6) for b in grid.beats_s),
        beats_per_bar=grid.beats_per_bar,
        sections_s=tuple(round(t, 6) for t in grid.sections_s),
        crf=shots.output_settings().crf,
        x264_preset="veryfast" if gen.quality == "draft" else shots.output_settings().preset,
        encode_threads=shots.output_settings().threads,
        quality=gen.quality,
        step_cache=gen.cache,
        step_cache_threshold=gen.step_cache_threshold(),
        compile=gen.compile,
        attention=gen.attention,
    )


def _absorb_tail_sliver(planned: list[PlannedShot], beat_frames: float) -> list[PlannedShot]:
    """A looped list often ends with the next shot cut after a few frames by the song's end: a flash
    no editor would keep. A last shot shorter than one beat is dropped and the shot before it
    runs to the end (slightly slowed, since its clip is retimed to the longer slot)."""
    if len(planned) < 2:
        return planned
    last, prev = planned[-1], planned[-2]
    if last.end_frame - last.start_frame >= beat_frames:
        return planned
    extended = replace(
        prev, end_s=last.end_s, end_frame=last.end_frame, slot_frames=last.end_frame - prev.start_frame
    )
    return [*planned[:-2], extended]


def _extend_long_shots(
    planned: list[PlannedShot], preset: ModelPreset, cutter: _Cutter, fps: float
) -> list[PlannedShot]:
    """Split each slot that needs more frames than one model call makes into as few segments as
    fit, each cut on the beat nearest an even split; every segment after the first is chained from
    the one before (same prompt, next seed) and colour-anchored to it, so the shot plays at its
    real speed instead of being slowed. A segment keeps the whole shot's span for its camera move."""
    out: list[PlannedShot] = []
    for s in planned:
        parts = math.ceil(frames_needed(s.slot_frames, fps, preset.fps) / preset.max_frames)
        if parts <= 1:
            out.append(replace(s, index=len(out)))
            continue
        t0, t1 = s.start_frame / fps, (s.start_frame + s.slot_frames) / fps
        bounds = [s.start_frame]
        for k in range(1, parts):
            b = round(cutter.beats.nearest_time(t0 + (t1 - t0) * k / parts) * fps)
            if bounds[-1] < b < s.start_frame + s.slot_frames:
                bounds.append(b)
        bounds.append(s.start_frame + s.slot_frames)
        for k in range(len(bounds) - 1):
            start, full_end = bounds[k], bounds[k + 1]
            end = min(full_end, s.end_frame)
            if start >= end:
                break
            out.append(
                replace(
                    s,
                    index=len(out),
                    seed=s.seed + k,
                    start_s=start / fps,
                    end_s=end / fps,
                    start_frame=start,
                    end_frame=end,
                    slot_frames=full_end - start,
                    chain=s.chain if k == 0 else True,
                    takes=s.takes if k == 0 else 1,
                    blend=s.blend if k == 0 else "cut",
                    blend_frames=s.blend_frames if k == 0 else 0,
                    segment=k,
                    span=(s.start_frame, s.slot_frames),
                )
            )
    return out


def _settle_frames(
    planned: list[PlannedShot], beats: GridAxis, preset: ModelPreset, fps: float,
    frames_for: Callable[[int], int],
) -> list[PlannedShot]:  # fmt: skip
    """Every slot's beats and frames, from its final cut times: ``length_beats`` is the grid's
    beats between them; the clip has the frames that fill the slot at the model's native speed
    (the frame rule's next valid count, the surplus left unplayed: rounding a count to 4k+1 by
    stretching would change the speed by up to 25 % at 8 fps). A shot the list repeats (fit:
    loop) keeps one clip, long enough for its longest slot, so that every repeat is a cache hit;
    a shorter slot shows its beginning. Only a clip that cannot be long enough (over the model's
    maximum, not extended) is slowed down to fill its slot."""
    longest: dict[int, int] = {}  # source shot -> frames its longest slot needs (repeats share a clip)
    for s in planned:
        if not s.chain:
            need = frames_needed(s.slot_frames, fps, preset.fps)
            longest[s.source_index] = max(longest.get(s.source_index, 0), need)
    out = []
    for s in planned:
        need = frames_needed(s.slot_frames, fps, preset.fps)
        frames = frames_for(need if s.chain else longest[s.source_index])
        beats_between = beats.pos_at(s.end_s) - beats.pos_at(s.start_s)
        out.append(replace(s, num_frames=frames, play_frames=min(need, frames),
                           length_beats=round(beats_between, 6)))  # fmt: skip
    return out


def _fit_blends(planned: list[PlannedShot]) -> list[PlannedShot]:
    """A blend takes half its frames from each side of its cut: at most the whole of the shorter
    neighbouring slot, so that two blends never overlap (each slot gives at most half to each end)."""
    out = []
    for i, s in enumerate(planned):
        if s.blend == "cut" or i == 0:
            out.append(s)
            continue
        room = min(s.end_frame - s.start_frame, planned[i - 1].end_frame - planned[i - 1].start_frame)
        frames = min(s.blend_frames, room)
        out.append(replace(s, blend=s.blend if frames > 0 else "cut", blend_frames=max(frames, 0)))
    return out


def only_shots(plan: RenderPlan, ids: set[str]) -> RenderPlan:
    """The plan restricted to the shots with the given ids (for reporting)."""
    return replace(plan, shots=tuple(s for s in plan.shots if s.id in ids))
