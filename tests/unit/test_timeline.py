"""The timing contract on known grids: cuts on the frame nearest their beat, fit modes, frame rules."""

from pathlib import Path

import pytest

from mvgen.audio.grid import BeatGrid, GridAxis
from mvgen.config import parse_shotlist_text
from mvgen.config.presets import all_presets
from mvgen.planner import plan_video
from mvgen.timeline import FieldError, RenderPlan

TINY = all_presets()["tiny"]
WAN = all_presets()["wan2.1-t2v-1.3b"]


def grid(bpm=120.0, duration=40.0, first=0.25, jitter=0.0):
    period = 60.0 / bpm
    beats = []
    t = first
    k = 0
    while t < duration:
        beats.append(t + (jitter if k % 2 else 0.0))
        k += 1
        t = first + k * period
    return BeatGrid(bpm, duration, tuple(beats), tuple(beats[::4]), ())


def shots(body: str, header: str = "") -> object:
    return parse_shotlist_text(header + "\nshots:\n" + body, Path("t.yaml"))


def _nearest_beat_dist(t, beats):
    return min(abs(t - b) for b in beats)


@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0, 23.976])
@pytest.mark.parametrize("fit", ["loop", "stretch", "trim"])
def test_every_cut_is_on_the_frame_nearest_its_beat(fps, fit):
    g = grid(bpm=97.0, duration=30.0, first=0.31, jitter=0.013)
    sl = shots(
        "  - {prompt: a, length: 5}\n  - {prompt: b, length: 2 bars}\n  - {prompt: c, length: 3}\n",
        header=f"video: {{fps: {fps}}}\ntiming: {{fit: {fit}}}",
    )
    plan = plan_video(sl, g, TINY)
    assert plan.shots[0].start_s == 0.0
    for prev, shot in zip(plan.shots, plan.shots[1:], strict=False):
        assert shot.start_frame == prev.end_frame  # contiguous
        assert _nearest_beat_dist(shot.start_s, g.beats_s) <= 0.5 / fps + 1e-9
        assert shot.start_frame == round(shot.start_s * fps)
    if fit in ("loop", "stretch"):
        assert plan.total_frames == round(g.duration_s * fps)
        assert abs(plan.duration_s - g.duration_s) <= 1.0 / fps
        assert plan.shots[-1].end_frame == plan.total_frames


def test_beats_lengths_count_from_the_first_beat():
    g = grid(first=0.25)
    plan = plan_video(
        shots("  - {prompt: a, length: 8}\n  - {prompt: b, length: 4}\n", "timing: {fit: trim}"), g, TINY
    )
    # shot 1 absorbs the pickup before the first beat and ends on beat 8; shot 2 ends on beat 12
    assert plan.shots[0].end_s == pytest.approx(0.25 + 8 * 0.5)
    assert plan.shots[1].end_s == pytest.approx(0.25 + 12 * 0.5)
    assert plan.duration_s == pytest.approx(6.25)


def test_bars_land_on_downbeats():
    g = grid(first=0.25)
    plan = plan_video(
        shots("  - {prompt: a, length: 3}\n  - {prompt: b, length: 2 bars}\n", "timing: {fit: trim}"), g, TINY
    )
    # shot b starts mid-bar (beat 3) and still ends on a downbeat
    assert plan.shots[1].end_s == pytest.approx(g.downbeats_s[2]) or plan.shots[1].end_s == pytest.approx(
        g.downbeats_s[3]
    )


def test_seconds_lengths_snap_to_the_nearest_beat():
    g = grid(first=0.0)
    plan = plan_video(
        shots("  - {prompt: a, length: 3.2s}\n  - {prompt: b, length: 1s}\n", "timing: {fit: trim}"), g, TINY
    )
    assert plan.shots[0].end_s == pytest.approx(3.0)
    assert plan.shots[1].end_s == pytest.approx(4.0)


def test_loop_repeats_the_list_with_the_same_seeds_and_frames():
    g = grid(duration=30.0)
    sl = shots("  - {prompt: a, length: 8}\n  - {prompt: b, length: 8}\n", "generation: {seed: 7}")
    plan = plan_video(sl, g, TINY)
    assert len(plan.shots) > 4
    by_id = {}
    for s in plan.shots:
        by_id.setdefault(s.id, set()).add((s.seed, s.num_frames, s.prompt))
    assert by_id == {"shot-001": {(7, 33, "a")}, "shot-002": {(8, 33, "b")}}
    assert [s.repeat for s in plan.shots[:4]] == [0, 0, 1, 1]
    assert len(plan.unique_shots()) == 2


def test_stretch_covers_the_song_once():
    g = grid(duration=40.0)
    plan = plan_video(
        shots("  - {prompt: a, length: 4}\n  - {prompt: b, length: 4}\n", "timing: {fit: stretch}"), g, TINY
    )
    assert [s.id for s in plan.shots] == ["shot-001", "shot-002"]
    assert plan.shots[-1].end_s == pytest.approx(40.0)
    # one pass ends on beat 8 (4.25 s); the first cut (beat 4, 2.25 s) scaled by 40/4.25, on a beat
    assert plan.shots[0].end_s == pytest.approx(2.25 * 40 / 4.25, abs=0.25)
    assert _nearest_beat_dist(plan.shots[0].end_s, g.beats_s) <= 0.5 / 24


def test_trim_ends_after_the_last_shot_and_cuts_at_the_song_end():
    g = grid(duration=10.0)
    plan = plan_video(
        shots("  - {prompt: a, length: 8}\n  - {prompt: b, length: 16}\n", "timing: {fit: trim}"), g, TINY
    )
    assert plan.duration_s == pytest.approx(10.0)
    assert plan.shots[-1].slot_frames > plan.shots[-1].end_frame - plan.shots[-1].start_frame


def test_tail_sliver_shorter_than_a_beat_is_absorbed():
    g = grid(first=0.0, duration=16.1)  # 8 beats per shot -> the loop's next shot would get 0.1 s
    plan = plan_video(shots("  - {prompt: a, length: 8}\n  - {prompt: b, length: 8}\n"), g, TINY)
    # four 4-s shots fill 16 s; the fifth would get 0.1 s, so the fourth runs to the end instead
    assert [s.id for s in plan.shots] == ["shot-001", "shot-002", "shot-001", "shot-002"]
    assert plan.shots[-1].end_frame == plan.total_frames == round(16.1 * 24)
    assert plan.shots[-1].slot_frames == plan.total_frames - plan.shots[-1].start_frame


def test_frame_rule_and_maximum():
    assert [TINY.valid_frames(n) for n in (1, 5, 6, 32, 33, 34, 500)] == [5, 5, 9, 33, 33, 33, 33]
    assert [WAN.valid_frames(n) for n in (64, 65, 66, 81, 200)] == [65, 65, 69, 81, 81]
    plan = plan_video(shots("  - {prompt: a, length: 8}\n"), grid(first=0.0), WAN)
    # 4 s at 16 fps = 64 -> the next 4k+1, 65, generated; 64 of them played (not stretched)
    assert plan.shots[0].num_frames == 65 and plan.shots[0].play_frames == 64
    # with a pickup, the first slot lasts 4.25 s: 68 frames -> 69; its repeats (4 s) share the clip
    plan = plan_video(shots("  - {prompt: a, length: 8}\n"), grid(first=0.25), WAN)
    assert {s.num_frames for s in plan.shots} == {69}
    assert [s.play_frames for s in plan.shots[:3]] == [68, 64, 64]


@pytest.mark.parametrize(
    "header, loc, text",
    [
        ("video: {width: 840}", ("video", "width"), "width 840 must be a multiple of 16 for Wan (model wan2.1-t2v-1.3b): use 832 or 848"),
        ("video: {height: 470}", ("video", "height"), "use 464 or 480"),
        ("video: {width: 833}", ("video", "width"), "must be even"),
    ],
)  # fmt: skip
def test_size_errors_name_the_rule_and_nearest_sizes(header, loc, text):
    with pytest.raises(FieldError) as e:
        plan_video(shots("  - {prompt: a}\n", header), grid(), WAN)
    assert e.value.loc == loc
    assert text in e.value.message


def test_shot_shorter_than_a_frame_is_an_error():
    with pytest.raises(FieldError) as e:
        plan_video(
            shots("  - {prompt: a, length: 4}\n  - {prompt: b, length: 0.01}\n", "video: {fps: 8}"),
            grid(),
            TINY,
        )
    assert e.value.loc == ("shots", 1, "length")


def test_plan_json_round_trip():
    plan = plan_video(shots("  - {prompt: a, length: 8}\n  - {prompt: b, length: 3}\n"), grid(), TINY)
    assert RenderPlan.from_json(plan.to_json()) == plan
    row = plan.to_json()["shots"][0]
    assert {"id", "start_s", "end_s", "num_frames", "seed", "prompt"} <= set(row)


def test_grid_axis_extrapolates_past_the_last_beat():
    axis = GridAxis((1.0, 1.5, 2.0), 0.5)
    assert axis.time_at(4) == pytest.approx(3.0)
    assert axis.pos_at(0.0) == pytest.approx(-2.0)
    assert axis.nearest_time(2.6) == pytest.approx(2.5)


@pytest.mark.parametrize("fit", ["loop", "stretch", "trim"])
def test_section_lengths_cut_on_the_boundaries(fit):
    base = grid(bpm=120.0, duration=40.0, first=0.0)
    g = BeatGrid(120.0, 40.0, base.beats_s, base.downbeats_s, (8.0, 24.0))
    sl = shots(
        "  - {id: intro, prompt: a, length: section}\n  - {id: hit, prompt: b, length: 2 beats}\n"
        "  - {id: verse, prompt: c, length: section}\n  - {id: outro, prompt: d, length: 2 sections}\n",
        header=f"timing: {{fit: {fit}}}",
    )
    plan = plan_video(sl, g, TINY)
    ends = [(s.id, s.end_s) for s in plan.shots]
    # intro to the first boundary; the 2-beat shot; verse to the next boundary; outro: 24 -> the end
    # (the second boundary after 24 s does not exist, so the end of the track).
    assert ends == [("intro", 8.0), ("hit", 9.0), ("verse", 24.0), ("outro", 40.0)]
    verse = plan.shots[2]
    assert verse.length_beats == pytest.approx(30.0)  # 15 s at 120 BPM
    assert verse.num_frames == TINY.valid_frames(round(15.0 * TINY.fps))


def test_section_length_with_no_sections_is_the_rest_of_the_song():
    g = grid(bpm=120.0, duration=20.0, first=0.0)  # no sections
    sl = shots("  - {prompt: a, length: 4}\n  - {prompt: b, length: section}\n")
    plan = plan_video(sl, g, TINY)
    assert [(s.start_s, s.end_s) for s in plan.shots] == [(0.0, 2.0), (2.0, 20.0)]


def test_long_shot_becomes_chained_segments_when_the_sibling_is_at_hand():
    g = grid(bpm=120.0, duration=20.0, first=0.0)
    sl = shots("  - {id: long, prompt: a, length: 24, camera: {zoom: [1.0, 2.0]}}\n  - {id: b, prompt: b, length: 4}\n",
               header="timing: {fit: trim}")  # fmt: skip
    slowed = plan_video(sl, g, TINY)
    assert [s.id for s in slowed.shots] == ["long", "b"] and slowed.shots[0].num_frames == TINY.max_frames
    plan = plan_video(sl, g, TINY, extend_long=True)
    long = [s for s in plan.shots if s.id == "long"]
    # 12 s at 8 fps = 96 frames, at most 33 a call: 3 segments, cut on beats, chained, same span.
    assert [s.segment for s in long] == [0, 1, 2]
    assert [s.chain for s in long] == [False, True, True]
    assert all(s.num_frames <= TINY.max_frames for s in long)
    assert [s.start_s for s in long] == [0.0, 4.0, 8.0] and long[-1].end_s == 12.0
    assert {s.span for s in long} == {(0, 288)}
    assert [s.seed for s in long] == [long[0].seed, long[0].seed + 1, long[0].seed + 2]
    # The segments play at the model's real speed: frames generated cover their slots at 8 fps.
    for s in long:
        assert s.num_frames >= (s.end_frame - s.start_frame) / plan.fps * TINY.fps
    assert plan.shots[-1].id == "b" and plan.shots[-1].start_s == 12.0
    assert RenderPlan.from_json(plan.to_json()) == plan


def test_retime_is_the_videos_unless_a_shot_sets_its_own_and_a_draft_blends():
    body = "  - {prompt: a, length: 4}\n  - {prompt: b, length: 4, retime: nearest}\n  - {prompt: c, length: 4}\n"
    trim = "timing: {fit: trim}\n"
    plan = plan_video(shots(body, trim), grid(), TINY)
    assert [s.retime for s in plan.shots] == ["flow", "nearest", "flow"]  # the default is flow
    plan = plan_video(shots(body, trim + "video: {retime: blend}"), grid(), TINY)
    assert [s.retime for s in plan.shots] == ["blend", "nearest", "blend"]
    plan = plan_video(shots(body, trim + "generation: {quality: draft}"), grid(), TINY)
    assert [s.retime for s in plan.shots] == ["blend", "nearest", "blend"]


@pytest.mark.parametrize("slot", [1, 2, 17, 48, 61])
@pytest.mark.parametrize("shown", [1, 2, 9, 33])
@pytest.mark.parametrize("native", [8.0, 16.0, 24.0])
def test_source_positions_start_and_end_on_generated_frames_and_move_evenly(slot, shown, native):
    from mvgen.timeline import frames_needed, source_position

    pos = [source_position(k, shown, slot, 24.0, native) for k in range(slot + 4)]
    values = [j + num / den for j, num, den in pos]
    needed = frames_needed(slot, 24.0, native)
    last = shown - 1  # a clip longer than the slot needs is one drawn to an end frame: shown whole
    assert pos[0] == (0, 0, pos[0][2])  # the first output frame is the clip's first frame
    assert pos[slot - 1][1] == 0 and pos[slot - 1][0] == (last if slot > 1 else 0)  # the last is generated
    assert all(0 <= num < den for _, num, den in pos)
    steps = {round(b - a, 9) for a, b in zip(values, values[1:], strict=False)}
    assert len(steps) == 1  # one even pace, past the slot's end too
    if shown <= needed:
        assert max(steps) <= native / 24.0 + 1e-9  # never faster than the model's own speed


@pytest.mark.parametrize("slot", [2, 12, 17, 48])
@pytest.mark.parametrize("native", [8.0, 16.0, 24.0])
def test_a_clip_drawn_to_an_end_frame_is_shown_whole_and_ends_on_its_last_frame(slot, native):
    from mvgen.timeline import frames_needed, source_frame

    shown = frames_needed(slot, 24.0, native) + 3  # the frame rule rounded it up
    frames = [source_frame(k, shown, slot, 24.0, native) for k in range(slot)]
    assert frames[0] == 0 and frames[-1] == shown - 1
    assert all(b >= a for a, b in zip(frames, frames[1:], strict=False))


def test_a_bridge_takes_the_end_of_the_slot_before_and_is_made_after_both_neighbours():
    from mvgen.timeline import dependency_order

    body = (
        "  - {id: a, prompt: a, length: 4, end: next}\n  - {id: b, prompt: b, length: 4}\n"
        "  - {id: c, prompt: c, length: 4, transition: {bridge: 1}}\n  - {id: d, prompt: d, length: 4}\n"
    )
    plan = plan_video(shots(body, "timing: {fit: trim}\n"), grid(first=0.0), TINY)
    assert [s.id for s in plan.shots] == ["a", "b", "c.bridge", "c", "d"]
    b, bridge, c = plan.shots[1:4]
    assert (b.end_s, bridge.start_s, bridge.end_s, c.start_s) == (
        3.5,
        3.5,
        4.0,
        4.0,
    )  # c's cut stays on its beat
    assert bridge.chain and bridge.end_next and bridge.bridge and not c.chain and c.blend == "cut"
    assert bridge.play_frames == bridge.num_frames  # shown whole: it ends on c's first frame
    assert plan.shots[0].end_next and plan.shots[0].play_frames == plan.shots[0].num_frames
    # a after b (it ends on b's first frame); the bridge after b and c (it runs from one to the other)
    assert dependency_order(plan, list(range(5))) == [1, 0, 3, 2, 4]
    assert RenderPlan.from_json(plan.to_json()) == plan
