"""The cut sheet: the plan as an editor and a producer read it before paying for a render.

Per slot: where it sits (timecode, beats, bars), what it costs (frames, takes, whether its clip is
already cached, estimated GPU seconds) and what to look at (warnings: looped, trimmed, slowed down,
over the model's frames per call). Totals: new shots, cached shots, estimated GPU time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mvgen.cache import ShotCache
from mvgen.estimate import Rate, prior_rate, work_units
from mvgen.keys import ModelIdentity
from mvgen.timeline import REFERENCE_HOW, PlannedShot, RenderPlan, frames_needed


def shot_warnings(plan: RenderPlan, shot: PlannedShot, max_frames: int) -> list[str]:
    out = []
    if shot.repeat:
        out.append(f"looped (pass {shot.repeat + 1})")
    if shot.end_frame < shot.start_frame + shot.slot_frames:
        out.append("trimmed at the song's end")
    needed = frames_needed(shot.slot_frames, plan.fps, plan.native_fps)
    if needed > max_frames:
        out.append(f"over max frames ({needed} > {max_frames})")
    windows = plan.windows_of(shot)
    if windows > 1:  # how a long shot is made: one run in sliding windows, or chained segments
        out.append(f"one run, diffusion forcing ({windows} windows)")
    if shot.span is not None:  # a part of a shot longer than one call; later parts chained
        out.append(f"segment {shot.segment + 1}" + (", chained" if shot.segment else " of a long shot"))
    speed = shot.speed(plan.fps, plan.native_fps)  # 1: the model's own speed
    if speed < 1.0:
        out.append(f"slowed down x{1 / speed:.2f}")
    elif speed > 1.0:
        out.append(f"sped up x{speed:.2f}")
    return out


def cast_note(shot: PlannedShot) -> str:
    """The plan's `cast` column: who is in the shot and how their pictures reach the model
    (``reference``: every one is a reference image of the model's own, VACE; ``start frame``: the
    first one is the start frame; ``scored``: the shot's start is taken by its own still or the frame
    it is chained from, so the pictures only score its takes), and a storyboard still."""
    from pathlib import Path

    pictured = {u.role for u in shot.references}
    how = REFERENCE_HOW[shot.reference_mode]
    notes = [f"{n} ({how})" if n in pictured else n for n in shot.cast]
    if shot.image is not None and shot.image.role == "image":
        notes.append(f"still {Path(shot.image.path).name}")
    return ", ".join(notes) or "-"


@dataclass(frozen=True)
class SheetRow:
    shot: PlannedShot
    status: str  # cached | new | repeat (a loop's repeat: the same clip) | partly (some takes cached)
    takes_cached: int
    est_gpu_s: float | None  # None: unknown (no measured rate); 0 for cached shots and repeats
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "cached": self.status in ("cached", "repeat"),
            "takes_cached": self.takes_cached,
            "est_gpu_s": None if self.est_gpu_s is None else round(self.est_gpu_s, 1),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class CutSheet:
    plan: RenderPlan
    rows: tuple[SheetRow, ...]
    rate: Rate | None

    @property
    def new_shots(self) -> int:
        return sum(1 for r in self.rows if r.status in ("new", "partly"))

    @property
    def cached_shots(self) -> int:
        return sum(1 for r in self.rows if r.status == "cached")

    @property
    def repeats(self) -> int:
        return sum(1 for r in self.rows if r.status == "repeat")

    @property
    def generations(self) -> int:
        return sum(r.shot.takes - r.takes_cached for r in self.rows if r.status in ("new", "partly"))

    @property
    def est_gpu_s(self) -> float | None:
        costs = [r.est_gpu_s for r in self.rows if r.status in ("new", "partly")]
        return None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 1)

    def totals(self) -> dict[str, Any]:
        return {
            "slots": len(self.rows),
            "shots": self.new_shots + self.cached_shots,  # distinct clips (counts.py: slots, shots, takes)
            "new_shots": self.new_shots,
            "cached_shots": self.cached_shots,
            "repeats": self.repeats,
            "generations": self.generations,  # takes to generate
            "takes": self.generations,
            "est_gpu_s": self.est_gpu_s,
            "rate_source": self.rate.source if self.rate else None,
        }

    def to_json(self) -> dict[str, Any]:
        data = self.plan.to_json()
        for shot, row in zip(data["shots"], self.rows, strict=True):
            shot.update(row.to_json(), bars=round(row.shot.length_beats / self.plan.beats_per_bar, 3))
        data["totals"] = self.totals()
        return data


def _identities(plan: RenderPlan, keys: list[str | None]) -> list[tuple]:
    """What names the clip each slot shows, as far as the plan knows it: its key, or the shot and
    frames it is made from, and for a slot made from its neighbours' clips (chained, or drawn to the
    next one's first frame) theirs too: a chain or a bridge that a looped list repeats between the
    same clips is one generation, as the render makes it."""
    from mvgen.timeline import dependency_order, neighbours_needed

    out: dict[int, tuple] = {}
    for i in dependency_order(plan, list(range(len(plan.shots)))):
        s = plan.shots[i]
        if keys[i] is not None:
            out[i] = ("key", keys[i])
            continue
        made_from = tuple(out.get(j, ("slot", j)) for j in neighbours_needed(s))
        out[i] = ("source", s.source_index, s.num_frames, s.seed, s.bridge, s.chain, s.end_next, made_from)
    return [out[i] for i in range(len(plan.shots))]


def cut_sheet(plan: RenderPlan, ident: ModelIdentity | None, cache: ShotCache, *, max_frames: int,
              step_cost_s: float | None) -> CutSheet:  # fmt: skip
    """Rows for every slot of ``plan``, checked against the cache under the model's identity
    (``None``: the model is not built yet, so nothing can be cached)."""
    from mvgen.keys import step_cache_label
    from mvgen.render.state import RenderState

    if ident is None:
        keys: list[str | None] = [None] * len(plan.shots)
        rate = Rate(step_cost_s, "preset") if step_cost_s else None
    else:
        state = RenderState(plan, ident, cache)
        state.resolve_keys()
        keys = state.keys
        rate = prior_rate(cache, ident.id, step_cost_s, step_cache_label(plan))
    rows = []
    seen: set[tuple] = set()
    identities = _identities(plan, keys)
    for key, shot, identity in zip(keys, plan.shots, identities, strict=True):
        warnings = tuple(shot_warnings(plan, shot, max_frames))
        if identity in seen:
            rows.append(SheetRow(shot, "repeat", shot.takes, 0.0, warnings))
            continue
        seen.add(identity)
        if key is not None and cache.get(key) is not None:
            rows.append(SheetRow(shot, "cached", shot.takes, 0.0, warnings))
            continue
        have = 0
        if shot.takes > 1 and not shot.linked and ident is not None:
            have = sum(cache.get(k) is not None for k in state.candidates(shot))
        todo = shot.takes - have
        est = None if rate is None else rate.seconds_per_unit * work_units(plan, shot) * todo
        rows.append(SheetRow(shot, "partly" if have else "new", have, est, warnings))
    return CutSheet(plan, tuple(rows), rate)
