"""The output's key (keys.render_key): what changes the video's bytes changes it; what only changes
how clips are made (compile, attention, a step cache's threshold) does not, so switching those never
re-encodes an up-to-date video. Every field of the plan is put in one list or the other."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from mvgen.keys import GENERATION_ONLY, OUTPUT_FIELDS, SLOT_FIELDS, render_key
from mvgen.planner import plan_video
from mvgen.timeline import PlannedShot, RenderPlan
from tests.unit.test_timeline import TINY, grid, shots

BODY = """  - {id: a, prompt: a red car, length: 4}
  - {id: b, prompt: a blue sea, length: 1 bar, transition: {crossfade: 1}}
  - {id: c, prompt: a green hill, length: 3, camera: {zoom: [1.0, 1.2]}}
"""


@pytest.fixture
def plan() -> RenderPlan:
    return plan_video(shots(BODY, "version: 1\nmodel: tiny\naudio: t.wav"), grid(duration=12.0), TINY)


def _key(p: RenderPlan) -> str:
    return render_key(p, [f"clip{i}" for i in range(len(p.shots))], "audio-sha")


def test_every_plan_field_is_either_in_the_outputs_key_or_generation_only():
    plan_fields = {f.name for f in fields(RenderPlan)}
    slot_fields = {f.name for f in fields(PlannedShot)}
    assert plan_fields == set(OUTPUT_FIELDS) | set(GENERATION_ONLY["plan"])
    assert not set(OUTPUT_FIELDS) & set(GENERATION_ONLY["plan"])
    assert slot_fields == set(SLOT_FIELDS) | set(GENERATION_ONLY["slot"])
    assert not set(SLOT_FIELDS) & set(GENERATION_ONLY["slot"])


@pytest.mark.parametrize(
    "change",
    [{"compile": True}, {"attention": "flash"}, {"attention": "native"}, {"step_cache_threshold": 0.2},
     {"quality": "draft"}, {"tempo_bpm": 121.0}],
)  # fmt: skip
def test_what_only_changes_how_clips_are_made_keeps_the_outputs_key(plan, change):
    assert _key(replace(plan, **change)) == _key(plan)


@pytest.mark.parametrize(
    "change",
    [{"crf": 23}, {"x264_preset": "slow"}, {"fps": 25.0}, {"width": 640}, {"beats_s": (0.5, 1.0)},
     {"encode_threads": 2}],
)  # fmt: skip
def test_what_changes_the_video_changes_the_outputs_key(plan, change):
    assert _key(replace(plan, **change)) != _key(plan)


@pytest.mark.parametrize(
    "change",
    [{"blend_frames": 3}, {"camera": None}, {"play_frames": 5}, {"end_frame": 40}, {"chain": True},
     {"retime": "nearest"}, {"retime": "blend"}],
)  # fmt: skip
def test_a_slots_edit_changes_the_outputs_key(plan, change):
    shots_ = list(plan.shots)
    shots_[2] = replace(shots_[2], **change)
    assert _key(replace(plan, shots=tuple(shots_))) != _key(plan)


def test_the_clips_and_the_audio_are_in_the_outputs_key(plan):
    keys = [f"clip{i}" for i in range(len(plan.shots))]
    assert render_key(plan, keys, "audio-sha") != render_key(plan, [*keys[:-1], "other"], "audio-sha")
    assert render_key(plan, keys, "audio-sha") != render_key(plan, keys, "other-audio")


def test_a_clip_made_in_sliding_windows_has_its_window_in_its_key(plan):
    """The window changes a long clip's pixels (diffusion forcing): it joins the key of a clip longer
    than one window, and only then, so every other clip's key is what it was."""
    from mvgen.keys import ModelIdentity, clip_key

    ident = ModelIdentity("m", "m", "r")
    shot = plan.shots[0]
    plain = clip_key(ident, plan, shot)
    assert (
        clip_key(ident, replace(plan, window_frames=shot.num_frames), shot) == plain
    )  # one window: one call
    windowed = {clip_key(ident, replace(plan, window_frames=w), shot) for w in (5, 9)}
    assert len(windowed) == 2 and plain not in windowed
