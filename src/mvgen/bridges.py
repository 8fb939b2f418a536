"""Planning bridges and end frames (the planner calls ``insert_bridges`` once the slots are cut).

A ``transition: {bridge: N}`` on shot B makes the last N beats of the slot before it (A) a slot of
its own: a clip the first-and-last-frame model draws from A's last frame to B's first. B's cut stays
on its beat; the bridge starts on the beat N before it; A is that much shorter. Pure functions.
"""

from __future__ import annotations

from dataclasses import replace

from mvgen.audio.grid import GridAxis
from mvgen.config.schema import Blend, ShotList
from mvgen.timeline import SEED_LIMIT, FieldError, PlannedShot

BRIDGE_SEED = 500_009  # a bridge's seed: the seed of the shot it leads into, plus this
# a bridge's prompt without `bridge_prompt:`
BRIDGE_PROMPT = "a fast forward camera move into the next scene: {prompt}"


def insert_bridges(
    planned: list[PlannedShot], shots: ShotList, beats: GridAxis, fps: float
) -> list[PlannedShot]:
    """Every ``transition: {bridge: N}``: the last N beats of the slot before (A) become a slot of
    their own, a clip the first-and-last-frame model draws from A's last frame to the first frame of
    the shot (B); B's cut stays on its beat and the bridge starts on the beat N before it. Then
    every slot that ends on the next one's frame is checked (nothing to end on, or a cycle)."""
    out: list[PlannedShot] = []
    for s in planned:
        if s.blend != "bridge":
            out.append(replace(s, index=len(out)))
            continue
        src, a = shots.shots[s.source_index], out[-1]
        n = _transition_beats(shots, s.source_index)
        start = round(beats.time_at(beats.pos_at(s.start_s) - n) * fps)
        frames = s.start_frame - start  # the bridge's; it takes all but a frame of A's slot at most
        for beside, too_long in (
            (a, frames >= a.end_frame - a.start_frame),
            (s, frames > s.end_frame - s.start_frame),
        ):
            if too_long:
                have = beats.pos_at(beside.end_s) - beats.pos_at(beside.start_s)
                raise FieldError(
                    ("shots", s.source_index, "transition"),
                    f"a bridge of {n:g} beats is longer than the slot of shot {beside.id!r} beside it ({have:.3g} "
                    "beats): make the bridge shorter or the shots longer",
                )  # fmt: skip
        out[-1] = replace(a, end_s=start / fps, end_frame=start, slot_frames=start - a.start_frame)
        words = src.bridge_prompt or BRIDGE_PROMPT.format(prompt=src.prompt)
        out.append(replace(
            s, index=len(out), id=f"{s.id}.bridge", prompt=shots.full_prompt(src.model_copy(update={"prompt": words})),
            seed=(s.seed + BRIDGE_SEED) % SEED_LIMIT, start_s=start / fps, end_s=s.start_s, start_frame=start,
            end_frame=s.start_frame, slot_frames=s.start_frame - start, chain=True, end_next=True, bridge=True,
            takes=1, blend="cut", blend_frames=0, camera=None, cast=(), image=None, references=(), reference_mode="",
            end=None,
        ))  # fmt: skip
        out.append(replace(s, index=len(out), blend="cut", blend_frames=0))
    return _check_ends(out, shots)


def _transition_beats(shots: ShotList, i: int) -> float:
    transition = shots.shots[i].transition or shots.timing.transition
    assert isinstance(transition, Blend)
    return transition.beats


def _check_ends(planned: list[PlannedShot], shots: ShotList) -> list[PlannedShot]:
    """A slot ending on the next one's first frame needs a next slot (the song's last slot under
    ``fit: loop`` simply ends) that does not itself start from this one's last frame."""
    out = list(planned)
    for k, s in enumerate(planned):
        if not s.end_next or s.bridge:
            continue
        loc = ("shots", s.source_index, "end")
        if k == len(planned) - 1:
            if shots.timing.fit != "loop" and s.source_index == len(shots.shots) - 1:
                raise FieldError(
                    loc, f"shot {s.id!r} is the last: there is no next shot to end on; drop `end: next`"
                )
            out[k] = replace(s, end_next=False)
            continue
        after = planned[k + 1]
        if after.chain:
            how = "begins with a bridge from" if after.bridge else "is chained from"
            raise FieldError(
                loc, f"the next slot ({after.id!r}) {how} this shot's last frame, so this shot cannot end on "
                "its first: drop `end: next`",
            )  # fmt: skip
    return out
