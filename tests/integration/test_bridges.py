"""End frames and bridges (issue 29) through the CLI on `tiny`, whose first-and-last-frame sibling
(``WanImageToVideoPipeline`` with ``last_image``, trained by scripts/train_tiny_flf.py) draws a clip
from one frame to another. The real pipelines run; a spy records the frames each call was given."""

from __future__ import annotations

import functools
import json

import diffusers
import numpy as np
import pytest

from mvgen.media.clips import read_clip
from mvgen.media.colour import delta_e, rgb_to_lab
from mvgen.media.vision import COLOURS, mean_colour, synthetic_clip
from tests.conftest import write
from tests.synth import steady_beats, synth_track

HEAD = """version: 1
model: tiny
audio: {path: t.wav, bpm: 120}
video: {width: 416, height: 256, fps: 8}
generation: {seed: 5}
timing: {fit: trim}
"""
BRIDGE = (
    HEAD.replace("{", "{{").replace("}", "}}")
    + """shots:
  - {{id: a, prompt: "{a}", length: 4}}
  - {{id: b, prompt: "a blue field, still", length: 4, transition: {{bridge: 2}}}}
"""
)


@pytest.fixture
def spy(monkeypatch):
    """(prompt, start frame, end frame or None) of every image-to-video call; the real call runs."""
    calls: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    real = diffusers.WanImageToVideoPipeline.__call__

    def call(self, *args, **kwargs):
        last = kwargs.get("last_image")
        calls.append(
            (kwargs["prompt"], np.asarray(kwargs["image"]), None if last is None else np.asarray(last))
        )
        return real(self, *args, **kwargs)

    monkeypatch.setattr(diffusers.WanImageToVideoPipeline, "__call__", call)
    return calls


def _project(tmp_path, text: str):
    if not (tmp_path / "t.wav").exists():
        synth_track(tmp_path / "t.wav", steady_beats(120, 4), duration_s=4.0)
    return write(tmp_path / "s.yaml", text)


def _output(tmp_path) -> np.ndarray:
    import av

    with av.open(str(tmp_path / "s.mp4")) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _clip(cache_dir, key: str) -> np.ndarray:
    return read_clip(next((cache_dir / "shots").glob(f"*/{key}/clip.*")))


def _lab(frame: np.ndarray) -> np.ndarray:
    return rgb_to_lab(mean_colour(frame))


# each colour of the tiny world as a textured field (its shapes at half brightness), as the tiny paints it
FIELDS = {c: _lab(synthetic_clip(c, "still", 1, 64, 96, np.random.default_rng(3))[0] * 255) for c in COLOURS}


def nearest_colour(rgb: np.ndarray) -> str:
    """The colour whose textured field's mean is nearest to a frame's mean colour ``rgb``."""
    return min(COLOURS, key=lambda c: delta_e(rgb_to_lab(rgb), FIELDS[c]))


def test_a_bridge_is_drawn_from_the_shot_before_into_the_next_on_the_beat(tmp_path, mvgen, cache_dir, spy):
    r = mvgen(
        "render",
        str(_project(tmp_path, BRIDGE.format(a="a red field, still"))),
        "--otio",
        tmp_path / "e.otio",
    )
    assert r.code == 0, r
    m = json.loads((tmp_path / "s.json").read_text())
    import opentimelineio as otio  # the bridge is a clip of its own in the editor's timeline

    track = otio.adapters.read_from_file(str(tmp_path / "e.otio")).video_tracks()[0]
    assert [(c.name, c.metadata["mvgen"]["transition"]) for c in track] == [
        ("a", "cut"), ("b.bridge", "bridge"), ("b", "cut")
    ]  # fmt: skip
    rows = {s["id"]: s for s in m["shots"]}
    assert [(s["id"], s["transition"], s["end"]) for s in m["shots"]] == [
        ("a", "cut", ""), ("b.bridge", "bridge", "next"), ("b", "cut", "")
    ]  # fmt: skip
    # b's cut stays on its beat (4 beats at 120 BPM: 2 s); the bridge fills the 2 beats before it
    assert (rows["a"]["end_s"], rows["b.bridge"]["start_s"], rows["b.bridge"]["end_s"], rows["b"]["start_s"]) == (
        1.0, 1.0, 2.0, 2.0
    )  # fmt: skip
    # the bridge was given a's last shown frame and b's first, pixel for pixel, and its prompt
    [(prompt, start, end)] = spy
    assert prompt == "a fast forward camera move into the next scene: a blue field, still"
    a, b = _clip(cache_dir, rows["a"]["cache_key"]), _clip(cache_dir, rows["b"]["cache_key"])
    assert np.array_equal(start, a[rows["a"]["play_frames"] - 1]) and np.array_equal(end, b[0])
    # Eyes on the video: red, then the bridge from red to blue, then blue
    video = _output(tmp_path)
    spans = {k: range(rows[k]["start_frame"], rows[k]["end_frame"]) for k in rows}
    assert {nearest_colour(mean_colour(video[i])) for i in spans["a"]} == {"red"}
    assert nearest_colour(mean_colour(video[(spans["b"].start + spans["b"].stop) // 2])) == "blue"
    bridge = video[spans["b.bridge"].start : spans["b.bridge"].stop]
    # it starts where a ends and ends where b starts (output frames either side of each cut)...
    before, after = video[spans["a"].stop - 1], video[spans["b"].start]
    assert nearest_colour(mean_colour(bridge[0])) == "red" and delta_e(_lab(bridge[0]), _lab(before)) <= 6
    assert nearest_colour(mean_colour(bridge[-1])) == nearest_colour(mean_colour(after))
    assert delta_e(_lab(bridge[-1]), _lab(after)) <= 12
    # ...and its mean colour moves from one to the other without going back
    to_blue = [delta_e(_lab(f), _lab(after)) for f in bridge]
    assert all(later <= earlier + 2 for earlier, later in zip(to_blue, to_blue[1:], strict=False)), to_blue
    assert to_blue[0] - to_blue[-1] > 40

    # A new prompt for a: a and the bridge that touches it are made again, b comes from the cache
    spy.clear()
    assert mvgen("render", str(_project(tmp_path, BRIDGE.format(a="a yellow field, still")))).code == 0
    again = {s["id"]: s for s in json.loads((tmp_path / "s.json").read_text())["shots"]}
    assert sorted(k for k, s in again.items() if not s["cached"]) == ["a", "b.bridge"]
    assert again["b"]["cache_key"] == rows["b"]["cache_key"]
    assert len(spy) == 1 and np.array_equal(spy[0][2], b[0])


def test_a_shot_ends_on_the_next_shots_first_frame_or_on_its_end_still(tmp_path, mvgen, cache_dir, spy):
    green = (synthetic_clip("green", "still", 1, 256, 416, np.random.default_rng(1))[0] * 255).astype(
        np.uint8
    )
    from PIL import Image

    Image.fromarray(green).save(tmp_path / "green.png")
    text = (
        HEAD
        + """shots:
  - {id: a, prompt: "a red field, still", length: 4, end: next}
  - {id: b, prompt: "a blue field, still", length: 4, end_image: green.png}
"""
    )
    r = mvgen("render", str(_project(tmp_path, text)))
    assert r.code == 0, r
    m = json.loads((tmp_path / "s.json").read_text())
    rows = {s["id"]: s for s in m["shots"]}
    assert [(s["id"], s["end"]) for s in m["shots"]] == [("a", "next"), ("b", "image")]
    assert rows["b"]["end_image"]["role"] == "end" and m["model"]["flf_revision"].startswith("sha256:")
    a, b = _clip(cache_dir, rows["a"]["cache_key"]), _clip(cache_dir, rows["b"]["cache_key"])
    # b was made first (a ends on its first frame); each was given the frame it ends on
    assert [p for p, _, _ in spy] == ["a blue field, still", "a red field, still"]
    assert np.array_equal(spy[1][2], b[0])
    fitted = spy[0][2]
    assert fitted.shape == b[0].shape  # the still, fitted to the render size
    # Eyes: a starts red and its last frame meets b's first; b starts blue-ish and ends green
    assert nearest_colour(mean_colour(a[0])) == "red"
    last_a = a[rows["a"]["play_frames"] - 1]
    assert delta_e(_lab(last_a), _lab(b[0])) <= 12
    last_b = b[rows["b"]["play_frames"] - 1]
    assert nearest_colour(mean_colour(last_b)) == "green" and delta_e(_lab(last_b), _lab(fitted)) <= 12
    assert rows["a"]["end_sha256"] is not None and rows["b"]["end_sha256"] is not None


def test_plan_shows_bridges_and_ends_and_a_model_without_them_is_refused(tmp_path, mvgen, empty_cache):
    text = (
        HEAD
        + """shots:
  - {id: a, prompt: "a red field", length: 2, end: next}
  - {id: b, prompt: "a blue field", length: 2}
  - {id: c, prompt: "a green field", length: 2, transition: {bridge: 1}, bridge_prompt: "a fast pan right"}
"""
    )
    r = mvgen("plan", str(_project(tmp_path, text)), "--json")
    assert r.code == 0, r
    slots = json.loads(r.out)["shots"]
    assert [(s["id"], s["bridge"], s["end_next"], s["chain"]) for s in slots] == [
        ("a", False, True, False), ("b", False, False, False), ("c.bridge", True, True, True), ("c", False, False, False)
    ]  # fmt: skip
    assert (
        slots[2]["prompt"] == "a fast pan right" and slots[2]["start_s"] == 1.5 and slots[3]["start_s"] == 2.0
    )
    table = mvgen("plan", str(tmp_path / "s.yaml"))
    assert "cut→next" in table.out and "c.bridge" in table.out and " bridge " in table.out
    # the animatic has a card for the bridge, where the render will have it
    assert mvgen("render", str(tmp_path / "s.yaml"), "--preview").code == 0
    cards = json.loads((tmp_path / "s.preview.json").read_text())["shots"]
    assert [(c["id"], c["transition"], c["end"], c["start_s"]) for c in cards] == [
        ("a", "cut", "next", 0.0), ("b", "cut", "", 1.0), ("c.bridge", "bridge", "next", 1.5), ("c", "cut", "", 2.0)
    ]  # fmt: skip
    # a looped list: each bridge between the same two clips is one generation, as the render makes it
    looped = (
        HEAD.replace("fit: trim", "fit: loop, transition: {bridge: 1}")
        + """shots:
  - {id: a, prompt: "a red field", length: 2}
  - {id: b, prompt: "a blue field", length: 2}
"""
    )
    sheet = json.loads(mvgen("plan", str(write(tmp_path / "loop.yaml", looped)), "--json").out)
    assert [s["id"] for s in sheet["shots"]][:5] == ["a", "b.bridge", "b", "a.bridge", "a"]
    assert sheet["totals"]["new_shots"] == 4  # a, b and the bridge each way
    r = mvgen("plan", str(tmp_path / "s.yaml"), "--model", "tiny-cogvideox")
    assert r.code == 2 and "and 'tiny-cogvideox' has none" in r.err
    assert "wan2.1-flf2v-14b" in r.err and "ltx-video-0.9.5" in r.err  # the presets that can


def _condition(c) -> tuple[int, np.ndarray]:
    """(frame index, picture) of an LTX condition (LTXVideoCondition, or LTX-2's LTX2VideoCondition)."""
    if hasattr(c, "frame_index"):
        return c.frame_index, np.asarray(c.image)
    return c.index, np.asarray(c.frames)


@pytest.mark.parametrize(
    "model, cls", [("tiny-ltx", "LTXConditionPipeline"), ("tiny-ltx2", "LTX2ConditionPipeline")]
)
def test_ltx_draws_bridges_and_end_frames_with_its_condition_pipeline(
    model, cls, tmp_path, mvgen, cache_dir, monkeypatch
):
    """LTX-Video 0.9.5+ and LTX-2: the condition pipeline on the same weights, a condition at frame 0
    and one at the clip's last frame (random-weight tinies: the frames each was given are checked,
    not its colours)."""
    calls = []
    real = getattr(diffusers, cls).__call__

    @functools.wraps(real)
    def call(self, *args, **kwargs):
        calls.append((kwargs["num_frames"], [_condition(c) for c in kwargs["conditions"]]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(getattr(diffusers, cls), "__call__", call)
    text = (
        HEAD.replace("model: tiny", f"model: {model}").replace("width: 416", "width: 448")
        + """shots:
  - {id: a, prompt: "a red field", length: 2, end: next}
  - {id: b, prompt: "a blue field", length: 2}
  - {id: c, prompt: "a green field", length: 4, transition: {bridge: 1}}
"""
    )
    r = mvgen("render", str(_project(tmp_path, text)))
    assert r.code == 0, r
    rows = {s["id"]: s for s in json.loads((tmp_path / "s.json").read_text())["shots"]}
    assert list(rows) == ["a", "b", "c.bridge", "c"]
    b, c = _clip(cache_dir, rows["b"]["cache_key"]), _clip(cache_dir, rows["c"]["cache_key"])
    # a ends on b's first frame; the bridge runs from b's last shown frame to c's first
    (n_a, conds_a), (n_bridge, conds_bridge) = calls  # b, a (it ends on b), c, the bridge (between b and c)
    assert [i for i, _ in conds_a] == [0, n_a - 1] and np.array_equal(conds_a[1][1], b[0])
    assert [i for i, _ in conds_bridge] == [0, n_bridge - 1]
    assert np.array_equal(conds_bridge[0][1], b[rows["b"]["play_frames"] - 1])
    assert np.array_equal(conds_bridge[1][1], c[0])
