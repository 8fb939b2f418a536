"""The plan, the frames generated and the playback speed agree, on any mix of lengths and grids.

For every slot of a random shot list (beats, bars, seconds and sections mixed) on random grids (4/4
and 3/4, pickups before the first downbeat, tempo drift), the plan's beats are the grid's beats
between its cut times, and the slot shows its clip at the model's native speed (within one native
frame) unless the plan warns that it is slowed down or sped up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from mvgen.audio.grid import BeatGrid
from mvgen.config import parse_shotlist_text
from mvgen.config.presets import all_presets
from mvgen.cutsheet import shot_warnings
from mvgen.planner import plan_video
from mvgen.timeline import FieldError, source_frame

PRESETS = all_presets()


@st.composite
def grids(draw) -> BeatGrid:
    bpm = draw(st.floats(70.0, 170.0))
    per_bar = draw(st.sampled_from([3, 4]))
    pickup_beats = draw(st.integers(0, per_bar - 1))  # beats before the first downbeat
    first = draw(st.floats(0.0, 60.0 / bpm))  # the first beat's time
    drift = draw(st.floats(-0.25, 0.25))  # tempo change over the song (a ritardando or accelerando)
    duration = draw(st.floats(8.0, 45.0))
    beats, t, k = [], first, 0
    while t < duration:
        beats.append(t)
        k += 1
        t += 60.0 / (bpm * (1.0 + drift * t / duration))
    downbeats = beats[pickup_beats::per_bar]
    sections = sorted(draw(st.sets(st.sampled_from(downbeats[1:] or [duration]), max_size=3)))
    return BeatGrid(bpm, duration, tuple(beats), tuple(downbeats), tuple(s for s in sections if s < duration),
                    beats_per_bar=per_bar)  # fmt: skip


LENGTHS = st.one_of(
    st.integers(1, 12).map(str),
    st.sampled_from(["1.5", "2.5", "0.5"]),
    st.integers(1, 4).map(lambda n: f"{n} bar" + ("s" if n > 1 else "")),
    st.sampled_from(["0.7s", "1s", "2.3s", "3.5s", "6s"]),
    st.sampled_from(["section", "2 sections"]),
)


@st.composite
def shot_lists(draw):
    lengths = draw(st.lists(LENGTHS, min_size=1, max_size=6))
    fit = draw(st.sampled_from(["loop", "stretch", "trim"]))
    fps = draw(st.sampled_from([24, 25, 30, 23.976, 12]))
    body = "".join(f"  - {{prompt: p{i}, length: '{n}'}}\n" for i, n in enumerate(lengths))
    header = f"video: {{width: 832, height: 480, fps: {fps}}}\ntiming: {{fit: {fit}}}\n"
    return parse_shotlist_text(header + "shots:\n" + body, Path("t.yaml"))


def _beat_position(grid: BeatGrid, t: float) -> float:
    """Beats since the first beat at time ``t``: interpolated between the grid's beats, extended
    at their median spacing before the first and after the last (the song's intro and tail)."""
    beats = np.asarray(grid.beats_s)
    step = float(np.median(np.diff(beats)))
    if t < beats[0]:
        return (t - beats[0]) / step
    if t > beats[-1]:
        return len(beats) - 1 + (t - beats[-1]) / step
    return float(np.interp(t, beats, np.arange(len(beats))))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid=grids(), shots=shot_lists(), model=st.sampled_from(["tiny", "wan2.1-t2v-1.3b", "ltx-video"]),
       extend=st.booleans())  # fmt: skip
def test_beats_frames_and_speed_agree_for_every_slot(grid, shots, model, extend):
    preset = PRESETS[model]
    try:
        plan = plan_video(shots, grid, preset, extend_long=extend)
    except FieldError:  # a list the planner refuses (a stretched shot squeezed under one frame)
        reject()
    native, fps = plan.native_fps, plan.fps
    clip_of: dict[int, int] = {}
    for s in plan.shots:
        warnings = shot_warnings(plan, s, preset.max_frames)
        # beats: the grid's beats between the slot's cut times, whatever its length said
        between = _beat_position(grid, s.end_s) - _beat_position(grid, s.start_s)
        assert s.length_beats == pytest.approx(between, abs=1e-5)
        # frames: what the slot shows at the model's speed, from frames that exist
        on_screen = s.end_frame - s.start_frame
        shown = [source_frame(k, s.shown_frames, s.slot_frames, fps, native) for k in range(on_screen)]
        assert shown == sorted(shown) and max(shown) < s.num_frames  # forward, frames that exist
        assert preset.valid_frames(s.num_frames) == s.num_frames  # the model's frame rule
        # how much of the clip the slot plays through: where it is when the next slot begins
        played_s = source_frame(on_screen, s.shown_frames, s.slot_frames, fps, native) / native
        if not any(w.startswith(("slowed down", "sped up")) for w in warnings):
            assert abs(played_s - on_screen / fps) <= 1.0 / native + 1e-9, (s, warnings)
        else:
            assert s.shown_frames == s.num_frames  # slowed only where the clip cannot be longer
        # a shot the list repeats keeps one clip: every repeat is a cache hit
        if not s.chain:
            assert clip_of.setdefault(s.source_index, s.num_frames) == s.num_frames


def test_a_bar_from_a_mid_bar_start_plays_at_native_speed_and_says_how_long_it_is():
    """Issue 24's case: beat-length shots, then `1 bar` starting mid-bar. The slot is what the grid
    says (here 1.5 bars: the downbeat nearest a bar later), and its frames fill exactly that."""
    period = 0.5
    beats = tuple(np.arange(0.0, 20.0, period))
    grid = BeatGrid(120.0, 20.0, beats, beats[::4], ())
    shots = parse_shotlist_text(
        "video: {width: 832, height: 480, fps: 24}\ntiming: {fit: trim}\nshots:\n"
        "  - {prompt: a, length: 3}\n  - {prompt: b, length: 3}\n  - {prompt: c, length: 1 bar}\n",
        Path("t.yaml"),
    )
    plan = plan_video(shots, grid, PRESETS["wan2.1-t2v-1.3b"])
    bar = plan.shots[2]
    assert bar.start_s == pytest.approx(3.0)  # beat 6: the middle of the second bar
    assert bar.end_s == pytest.approx(6.0)  # the downbeat nearest a bar later (4.0 or 6.0: a tie)
    assert bar.length_beats == pytest.approx(6.0)  # 1.5 bars, not the nominal 4 beats
    # 3 s at 16 fps: 48 frames shown, 49 generated (4k+1), the last one left unplayed
    assert (bar.play_frames, bar.num_frames) == (48, 49)
    assert bar.speed(plan.fps, plan.native_fps) == pytest.approx(1.0)
    assert shot_warnings(plan, bar, 81) == []
