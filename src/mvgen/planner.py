"""Planning: (shot list, beat grid, model preset) -> RenderPlan. Pure functions, no I/O, no torch.

The song is the timeline. The first shot starts at 0; every later cut falls on the output frame
nearest to its beat (for bar lengths, its downbeat). ``fit`` decides how the shot list covers
the song: ``loop`` repeats it, ``stretch`` scales it, ``trim`` ends the video after the last shot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from mvgen.audio.grid import BeatGrid, GridAxis
from mvgen.bridges import insert_bridges
from mvgen.config.loras import LoraFile
from mvgen.config.presets import ModelPreset, generation_size
from mvgen.config.schema import ZOOM_BEATS, Blend, Lora, ShotList, Unit
from mvgen.families import FAMILIES
from mvgen.timeline import (
    MAX_PLANNED_SHOTS,
    FieldError,
    LoraUse,
    PlannedShot,
    RenderPlan,
    StillUse,
    frames_needed,
)

if TYPE_CHECKING:
    from mvgen.config.stills import StillFile

DRAFT_SCALE = 0.5  # `quality: draft` generates at half the final size (per side)...
DRAFT_STEP_FRACTION = 1 / 3  # ...with a third of the steps...
DRAFT_MIN_STEPS = 4  # ...but at least this many (fewer than the final's only if it had more)
COMPILE_BUCKETS = 4  # `compile: true`: shot lengths rounded up to 1/4, 2/4, 3/4 or all of the maximum


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
    lora_files: Mapping[tuple[str, str | None], LoraFile] | None = None,
    stills: Mapping[str, StillFile] | None = None,
) -> RenderPlan:
    """The cut sheet. Raises ``FieldError`` for values that cannot be planned (bad size, shots
    shorter than one frame). ``extend_long`` (the model's image-to-video sibling is at hand): a
    slot longer than one model call is generated as chained segments instead of being slowed.
    ``lora_files``: each LoRA of the shot list ((path, weight_name) as written) found and hashed.
    ``stills``: each still it names (`image:`, cast members' `images:`, as written) found and hashed."""
    gen = shots.generation
    steps = gen.steps or preset.steps
    if gen.quality == "draft":  # same seeds and cuts; fewer steps at half the size
        check_size(shots, preset)  # the final render's rules hold for a draft too
        preset = preset.model_copy(update={"render_scale": preset.render_scale * DRAFT_SCALE})
        steps = min(steps, max(DRAFT_MIN_STEPS, math.ceil(steps * DRAFT_STEP_FRACTION)))
    frames_for = (lambda n: bucketed_frames(preset, n)) if gen.compile else preset.valid_frames
    gen_size = check_size(shots, preset)
    fps, duration, fit = shots.video.fps, grid.duration_s, shots.timing.fit
    cutter = _Cutter(grid)
    cuts = _cut_times(shots, cutter, duration)
    scale = 1.0
    if fit == "stretch":
        scale = duration / cuts[-1][3]
        cuts = _stretched(cuts, cutter, duration, scale)
    total_audio_frames = round(duration * fps)
    total_frames = (
        total_audio_frames
        if fit in ("loop", "stretch")
        else min(total_audio_frames, round(cuts[-1][3] * fps))
    )
    planned = _slots(shots, cuts, total_frames, scale, grid.beat_period_s, lora_files or {}, stills or {},
                     FAMILIES[preset.family].references)  # fmt: skip
    planned = _absorb_tail_sliver(planned, fps * grid.beat_period_s)
    planned = insert_bridges(planned, shots, cutter.beats, fps)
    if extend_long:
        planned = _extend_long_shots(planned, preset, cutter, fps)
    planned = [_settle_loras(s) for s in planned]
    planned = _settle_frames(planned, cutter.beats, preset, fps, frames_for)
    planned = _fit_blends(planned)
    out = shots.output_settings()
    return RenderPlan(
        model=model_name or preset.name, family=preset.family, native_fps=preset.fps,
        width=shots.video.width, height=shots.video.height, fps=fps, gen_width=gen_size[0], gen_height=gen_size[1],
        steps=steps, guidance=gen.guidance if gen.guidance is not None else preset.guidance,
        max_sequence_length=preset.max_sequence_length, fit=fit, tempo_bpm=grid.tempo_bpm,
        beat_confidence=None if grid.confidence is None else round(grid.confidence.overall, 3),
        beats_source=grid.source, audio_duration_s=duration, duration_s=total_frames / fps,
        total_frames=total_frames, shots=tuple(planned), beats_s=tuple(round(b, 6) for b in grid.beats_s),
        beats_per_bar=grid.beats_per_bar, sections_s=tuple(round(t, 6) for t in grid.sections_s),
        crf=out.crf, x264_preset="veryfast" if gen.quality == "draft" else out.preset, encode_threads=out.threads,
        quality=gen.quality, step_cache=gen.cache, step_cache_threshold=gen.step_cache_threshold(),
        compile=gen.compile, attention=gen.attention, image_fit=shots.video.image_fit,
        window_frames=preset.window_frames,
    )  # fmt: skip


def retime_mode(mode: str, quality: str) -> str:
    """A shot's retiming: its own or the video's; a draft makes ``flow`` the cheaper ``blend``."""
    return "blend" if mode == "flow" and quality == "draft" else mode


Cut = tuple[int, int, float, float]  # (source index, repeat, ideal start, ideal end)


def _cut_times(shots: ShotList, cutter: _Cutter, duration: float) -> list[Cut]:
    """Where each shot of the list starts and ends on the grid, the list repeated with ``fit: loop``
    until the song ends."""
    unit_default = shots.timing.unit
    lengths = [
        (s.length.value, s.length.resolved_unit(unit_default))
        if s.length
        else (shots.timing.length, unit_default)
        for s in shots.shots
    ]
    fit = shots.timing.fit
    cuts: list[Cut] = []
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
            return cuts


def _stretched(cuts: list[Cut], cutter: _Cutter, duration: float, scale: float) -> list[Cut]:
    """``fit: stretch``: every cut moved to the beat nearest its scaled time, the last to the end."""
    stretched = []
    prev = 0.0
    for k, (i, r, _, end) in enumerate(cuts):
        new_end = duration if k == len(cuts) - 1 else min(cutter.beats.nearest_time(end * scale), duration)
        stretched.append((i, r, prev, new_end))
        prev = new_end
    return stretched


def _slots(shots: ShotList, cuts: list[Cut], total_frames: int, scale: float, beat_s: float,
           lora_files: Mapping[tuple[str, str | None], LoraFile], stills: Mapping[str, StillFile],
           mechanism: str | None = None) -> list[PlannedShot]:  # fmt: skip
    """A slot per cut, on output frames, until the video ends (frames and beats settled later).
    A blend's beats are the grid's (``beat_s``), scaled with a stretched list (``scale``)."""
    fps, ids, fit = shots.video.fps, shots.shot_ids(), shots.timing.fit
    planned: list[PlannedShot] = []
    for k, (i, r, start, end) in enumerate(cuts):
        start_f = 0 if k == 0 else round(start * fps)
        end_f_full = total_frames if fit == "stretch" and k == len(cuts) - 1 else round(end * fps)
        if start_f >= total_frames:
            break
        end_f = min(end_f_full, total_frames)
        if end_f <= start_f:
            raise FieldError(
                ("shots", i, "length"),
                f"shot {ids[i]!r} is shorter than one output frame at {fps:g} fps; make it longer",
            )
        src = shots.shots[i]
        transition = src.transition or shots.timing.transition
        blend, blend_beats = "cut", 0.0
        if isinstance(transition, Blend):  # a bridge is drawn by the model, not blended (_bridges)
            blend, blend_beats = transition.kind, transition.beats
        elif transition == "zoom":
            blend, blend_beats = "zoom", ZOOM_BEATS
        first = not planned  # the first shot has nothing before it to chain from or blend with
        chained = transition == "chain" and not first and src.image is None  # a still is its own start
        members = tuple(shots.members_of(src))
        image, references, mode = _stills_of(shots, src.image, members, chained, stills, mechanism)
        planned.append(
            PlannedShot(
                index=len(planned), id=ids[i], source_index=i, repeat=r,
                prompt=shots.full_prompt(src),
                negative=shots.negative, seed=src.seed if src.seed is not None else shots.generation.seed + i,
                start_s=start_f / fps, end_s=end_f / fps, start_frame=start_f, end_frame=end_f,
                slot_frames=end_f_full - start_f,
                num_frames=0,  # set with the beats by _settle_frames, once the slots are final
                length_beats=0.0,
                chain=chained,
                # A chained shot continues the chosen picture before it: one take.
                takes=1 if chained else (src.takes or shots.generation.takes),
                blend="cut" if first else blend,
                camera=(
                    {"zoom": list(src.camera.zoom), "pan": list(src.camera.pan), "pulse": src.camera.pulse}
                    if src.camera else None
                ),
                blend_frames=0 if first else round(blend_beats * scale * beat_s * fps),
                loras=tuple(_lora_use(lora, lora_files) for lora in shots.loras_of(src)),
                retime=retime_mode(src.retime or shots.video.retime, shots.generation.quality),
                cast=members, image=image, references=references, reference_mode=mode,
                end=StillUse(stills[src.end_image].path, stills[src.end_image].sha256, "end") if src.end_image else None,
                end_next=src.end == "next",
            )
        )  # fmt: skip
    return planned


def _stills_of(shots: ShotList, written: str | None, members: tuple[str, ...], chained: bool,
               stills: Mapping[str, StillFile], mechanism: str | None = None,
               ) -> tuple[StillUse | None, tuple[StillUse, ...], str]:  # fmt: skip
    """A slot's start frame, its cast members' reference pictures, and how those reach the model:
    "vace" (every picture a reference image of the model's own, ``mechanism``: Wan VACE), else
    "start" (the first picture is the start frame of the image-to-video sibling), or "" when the
    shot's start is taken already (its own still, or the previous shot's last frame it is chained
    from): the references then only score its takes. Scored they are in every mode."""
    image = StillUse(stills[written].path, stills[written].sha256, "image") if written else None
    refs = tuple(
        StillUse(stills[p].path, stills[p].sha256, name) for name in members for p in shots.cast[name].images
    )
    if refs and mechanism == "vace":
        return image, refs, "vace"
    if refs and image is None and not chained:
        return refs[0], refs, "start"
    return image, refs, ""


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
        if parts <= 1 or s.bridge:  # a bridge is one clip (slowed if it must be)
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
                    image=s.image if k == 0 else None,  # a later segment continues the one before
                    # the start frame is the first segment's; reference images go to every call
                    reference_mode=s.reference_mode if k == 0 or s.reference_mode == "vace" else "",
                    takes=s.takes if k == 0 else 1,
                    blend=s.blend if k == 0 else "cut",
                    blend_frames=s.blend_frames if k == 0 else 0,
                    segment=k,
                    span=(s.start_frame, s.slot_frames),
                    # the frame the shot ends on is its last segment's to reach
                    end=s.end if full_end == bounds[-1] else None,
                    end_next=s.end_next and full_end == bounds[-1],
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
    maximum, not extended) is slowed down to fill its slot; a clip drawn to an end frame (a bridge,
    ``end: next``, ``end_image:``) is made for its own slot and shown whole, a little faster when the
    frame rule rounds it up, so that the slot's last frame is the one it was drawn to."""
    longest: dict[int, int] = {}  # source shot -> frames its longest slot needs (repeats share a clip)
    for s in planned:
        if not s.chain:
            need = frames_needed(s.slot_frames, fps, preset.fps)
            longest[s.source_index] = max(longest.get(s.source_index, 0), need)
    out = []
    for s in planned:
        need = frames_needed(s.slot_frames, fps, preset.fps)
        frames = frames_for(need if s.own_clip else longest[s.source_index])
        beats_between = beats.pos_at(s.end_s) - beats.pos_at(s.start_s)
        out.append(replace(s, num_frames=frames, play_frames=frames if s.uses_flf else min(need, frames),
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


def _lora_use(lora: Lora, files: Mapping[tuple[str, str | None], LoraFile]) -> LoraUse:
    found = files[(lora.path, lora.weight_name)]
    return LoraUse(name=f"lora_{found.sha256[:12]}", path=found.path, sha256=found.sha256, weight=lora.weight,
                   applies_to=lora.applies_to, steps=lora.steps or 0, guidance=lora.guidance)  # fmt: skip


def _settle_loras(s: PlannedShot) -> PlannedShot:
    """A slot's LoRAs, once it is known which pipeline makes it (a chained slot or a long shot's later
    segment: the image-to-video sibling): those that apply to it, one per file (the shot's own entry
    wins over the video's), and the steps and guidance of the first speed LoRA among them."""
    by_name = {u.name: u for u in s.loras if u.applies(s.uses_i2v)}
    uses = tuple(by_name.values())
    steps = next((u.steps for u in uses if u.steps), 0)
    guidance = next((u.guidance for u in uses if u.guidance is not None), None)
    return replace(s, loras=uses, steps=steps, guidance=guidance)
