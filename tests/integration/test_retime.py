"""Retiming with eyes: 8 fps pans assembled into a 24 fps video and decoded back. With ``flow`` the
picture moves by the same amount every output frame; with ``nearest`` it holds for two frames and
jumps three frames' worth. Either way the cuts, the slot lengths and the duration are the plan's, and
every slot starts and ends on a generated frame."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from mvgen.audio.grid import BeatGrid
from mvgen.audio.probe import probe_audio
from mvgen.config import parse_shotlist_text
from mvgen.config.presets import all_presets
from mvgen.ffmpeg import probe_streams
from mvgen.media.assemble import assemble
from mvgen.media.clips import write_clip
from mvgen.media.retime import Retimer, blend
from mvgen.planner import plan_video
from mvgen.timeline import source_position
from tests.conftest import drum_track, write
from tests.synth import steady_beats, synth_track

W, H = 160, 96
SPEED = 9  # pixels per generated (8 fps) frame: 3 per output frame at 24 fps


TINTS = [(200, 60, 60), (60, 180, 70), (60, 80, 200)]


def pan_frames(n: int, seed: int, speed: int = SPEED) -> np.ndarray:
    """``n`` frames of a window sliding right, ``speed`` px a frame, over a smooth random texture
    tinted by ``seed`` (so a cut between two shots changes the picture's mean colour)."""
    rng = np.random.default_rng(seed)
    width = W + speed * n

    def noise(cell: int) -> np.ndarray:
        small = (rng.random((H // cell + 2, width // cell + 2, 3)) * 255).astype(np.uint8)
        return cv2.resize(small, None, fx=cell, fy=cell, interpolation=cv2.INTER_CUBIC)[:H, :width]

    big = 0.5 * noise(24) + 0.3 * noise(8) + 0.5 * np.array(TINTS[seed % len(TINTS)])
    big = np.clip(big, 0, 255).astype(np.uint8)
    return np.stack([np.ascontiguousarray(big[:, speed * j : speed * j + W]) for j in range(n)])


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """Three shots (4, 3 and 5 beats at 120 BPM) of different textures, assembled once per mode."""
    tmp = tmp_path_factory.mktemp("retime")
    audio = probe_audio(drum_track(tmp / "a.wav", duration_s=6.0))
    beats = tuple(0.5 * i for i in range(13))
    grid = BeatGrid(120.0, audio.duration_s, beats, beats[::4], ())
    shots = parse_shotlist_text(
        f"video: {{width: {W}, height: {H}, fps: 24}}\ntiming: {{fit: trim}}\nshots:\n"
        "  - {prompt: a, length: 4}\n  - {prompt: b, length: 3}\n  - {prompt: c, length: 5}\n",
        Path("t.yaml"),
    )
    plan = plan_video(shots, grid, all_presets()["tiny"].model_copy(update={"render_scale": 1.0}))
    assert [s.retime for s in plan.shots] == ["flow"] * 3  # the default
    clips, generated = [], []
    for s in plan.shots:
        frames = pan_frames(s.num_frames, seed=s.index)
        write_clip(tmp / f"c{s.index}.mkv", frames, 8.0)
        clips.append(tmp / f"c{s.index}.mkv")
        generated.append(frames)
    out = {}
    for mode in ("flow", "nearest"):
        mode_plan = dataclasses.replace(
            plan, shots=tuple(dataclasses.replace(s, retime=mode) for s in plan.shots)
        )
        path = tmp / f"{mode}.mp4"
        assemble(mode_plan, clips, audio, path)
        with av.open(str(path)) as c:
            out[mode] = (path, np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]))
    return plan, generated, out


def shift(a: np.ndarray, b: np.ndarray) -> float:
    """How far the picture moved from a to b, in pixels (phase correlation under a Hann window:
    the window slides right, so the picture moves left; returned as a positive distance)."""
    grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float64) for x in (a, b)]
    (dx, _), _ = cv2.phaseCorrelate(*grey, cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_64F))
    return -dx


def motions(plan, frames) -> list[list[float]]:
    """The motion between consecutive output frames inside each slot (cuts excluded)."""
    return [
        [shift(frames[k], frames[k + 1]) for k in range(s.start_frame, s.end_frame - 1)] for s in plan.shots
    ]


def test_flow_moves_the_same_amount_every_output_frame(renders):
    plan, _, out = renders
    for slot, moves in zip(plan.shots, motions(plan, out["flow"][1]), strict=True):
        median = float(np.median(moves))
        assert 2.4 < median < 3.4, (slot.id, median)  # 9 px per 8 fps frame is 3 per 24 fps frame
        worst = max(abs(m - median) / median for m in moves)
        assert worst <= 0.2, (slot.id, [round(m, 2) for m in moves])


def test_nearest_holds_two_frames_then_jumps_three(renders):
    plan, _, out = renders
    for moves in motions(plan, out["nearest"][1]):
        held = [m for m in moves if abs(m) < 0.5]
        jumps = [m for m in moves if abs(m - SPEED) < 1.0]
        assert len(held) + len(jumps) == len(moves)  # nothing in between
        assert len(held) >= 1.8 * len(jumps)  # 0, 0, 9, 0, 0, 9 ...


def test_cuts_slots_and_duration_are_the_plans(renders):
    plan, _, out = renders
    for mode, (path, frames) in out.items():
        assert len(frames) == plan.total_frames, mode
        assert abs(probe_streams(path)["duration_s"] - plan.duration_s) < 1.5 / plan.fps, mode
        # a cut changes the tint: the largest jumps of the mean colour
        means = frames.reshape(len(frames), -1, 3).mean(axis=1)
        jumps = np.abs(np.diff(means, axis=0)).sum(axis=1)
        cuts = sorted(int(k) + 1 for k in np.argsort(jumps)[-(len(plan.shots) - 1) :])
        assert cuts == [s.start_frame for s in plan.shots[1:]], mode
        assert [s.end_frame - s.start_frame for s in plan.shots] == [48, 36, 60]


def test_every_slot_starts_and_ends_on_a_generated_frame(renders):
    plan, generated, out = renders
    frames = out["flow"][1]
    for s, clip in zip(plan.shots, generated, strict=True):
        j, num, _ = source_position(s.end_frame - 1 - s.start_frame, s.shown_frames, s.slot_frames, 24, 8)
        assert num == 0
        for k, want, near in ((s.start_frame, clip[0], clip[1]), (s.end_frame - 1, clip[j], clip[j - 1])):
            err = np.abs(frames[k].astype(int) - want).mean()
            # the generated frame, through crf 18, and not a frame a third of the way to the next
            made = Retimer(lambda i, pair=(want, near): pair[i], 2, "flow").at(0, 1, 3)
            assert err < 4.0 and err < 0.5 * np.abs(frames[k].astype(int) - made).mean(), (s.id, k, err)


def test_a_cut_inside_a_clip_falls_back_to_a_blend():
    """Two unrelated pictures: the flow cannot explain one by the other, so the in-between frame is
    their crossfade rather than a warp."""
    a, b = pan_frames(1, seed=1)[0], pan_frames(1, seed=2)[0]
    made = Retimer(lambda j: (a, b)[j], 2, "flow").at(0, 1, 3)
    assert np.abs(made.astype(int) - blend(a, b, 1 / 3)).max() <= 1


def test_flow_rebuilds_a_dropped_frame_better_than_a_blend():
    frames = pan_frames(3, seed=3, speed=5)
    truth = frames[1]
    flow = Retimer(lambda j: frames[::2][j], 2, "flow").at(0, 1, 2)
    mixed = Retimer(lambda j: frames[::2][j], 2, "blend").at(0, 1, 2)
    inner = (slice(8, -8), slice(24, -24))  # away from the edges the pan brings in
    err_flow = np.abs(flow[inner].astype(int) - truth[inner]).mean()
    err_blend = np.abs(mixed[inner].astype(int) - truth[inner]).mean()
    assert err_flow < 0.35 * err_blend, (err_flow, err_blend)


def test_the_shot_lists_retime_reaches_the_video_and_the_manifest(tmp_path, mvgen, cache_dir):
    """Through the CLI on tiny (8 fps at 24): the video's default is flow, a shot's own `retime:
    nearest` repeats each generated frame three times, and the manifest says which slot got which;
    switching a mode re-encodes without generating."""
    synth_track(tmp_path / "t.wav", steady_beats(120, 4), duration_s=4.0)
    text = """version: 1
model: tiny
audio: t.wav
video: {width: 128, height: 80, fps: 24}
generation: {steps: 2}
timing: {fit: trim}
shots:
  - {id: a, prompt: a red field panning left, length: 4}
  - {id: b, prompt: a blue field panning right, length: 4, retime: nearest}
"""
    shots = write(tmp_path / "x.yaml", text)
    assert mvgen("render", shots).code == 0
    manifest = json.loads((tmp_path / "x.json").read_text())
    assert [s["retime"] for s in manifest["shots"]] == ["flow", "nearest"]
    with av.open(str(tmp_path / "x.mp4")) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.int16)
    still = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3)) < 0.3  # frame k+1 repeats frame k
    a, b = manifest["shots"]
    in_a = still[a["start_frame"] : a["end_frame"] - 1]
    in_b = still[b["start_frame"] : b["end_frame"] - 1]
    assert in_b.sum() >= 0.6 * len(in_b)  # nearest: two repeats in every three frames
    assert in_a.sum() <= 0.1 * len(in_a)  # flow: every output frame its own
    write(tmp_path / "x.yaml", text.replace(", retime: nearest", ""))
    r = mvgen("render", shots, "--json")
    assert r.code == 0 and '"generated": 0' in r.out
    manifest = json.loads((tmp_path / "x.json").read_text())
    assert [s["retime"] for s in manifest["shots"]] == ["flow", "flow"] and manifest["output"]["reencoded"]
