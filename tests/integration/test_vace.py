"""Cast pictures as VACE reference images (issue 28) through the CLI on `tiny-vace`, the tiny Wan
with VACE's context blocks, trained to paint its reference picture's colour whatever colour the
prompt names. The real WanVACEPipeline runs; a spy on it records what it was given."""

from __future__ import annotations

import json
import re

import diffusers
import numpy as np
import pytest
from PIL import Image

from mvgen.media.clips import read_clip
from mvgen.media.colour import delta_e, rgb_to_lab
from mvgen.media.stills import fit_inside
from mvgen.media.vision import dominant_colour, synthetic_clip
from tests.conftest import write
from tests.synth import steady_beats, synth_track

SHOTS = """version: 1
model: tiny-vace
audio: {path: t.wav, bpm: 120}
video: {width: 640, height: 384, fps: 8}
generation: {seed: 5}
timing: {fit: trim}
cast:
  violet: {description: a figure, images: [violet.png]}
  leaf: {description: a figure, images: [leaf.png]}
shots:
  - {id: v, prompt: "a red square, still", cast: [violet], length: 2}
  - {id: l, prompt: "a red square, still", cast: [leaf], length: 2}
  - {id: r, prompt: "a red square, still", length: 2}
"""


def _picture(path, colour: str, height: int, width: int, seed: int) -> np.ndarray:
    """A cast member's picture: a textured field of ``colour`` (the tiny world's), its own shape."""
    picture = (
        synthetic_clip(colour, "still", 1, height, width, np.random.default_rng(seed))[0] * 255
    ).astype(np.uint8)
    Image.fromarray(picture).save(path)
    return picture


def _lab(pixels: np.ndarray) -> np.ndarray:
    return rgb_to_lab(pixels.reshape(-1, 3).mean(axis=0))


@pytest.fixture
def spy(monkeypatch):
    calls: list[tuple[str, list[np.ndarray]]] = []
    real = diffusers.WanVACEPipeline.__call__

    def call(self, *args, **kwargs):
        refs = [np.asarray(p) for p in kwargs.get("reference_images") or []]
        calls.append((kwargs["prompt"], refs))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(diffusers.WanVACEPipeline, "__call__", call)
    return calls


def test_a_reference_picture_sets_the_colour_the_prompt_names_another(tmp_path, mvgen, cache_dir, spy):
    synth_track(tmp_path / "t.wav", steady_beats(120, 6), duration_s=6.0)
    pictures = {
        "v": _picture(tmp_path / "violet.png", "purple", 200, 150, 1),  # taller than the frame
        "l": _picture(tmp_path / "leaf.png", "green", 120, 240, 2),  # wider
    }
    shots = write(tmp_path / "s.yaml", SHOTS)
    plan = mvgen("plan", str(shots))
    assert plan.code == 0, plan
    assert "violet (reference)" in plan.out and "leaf (reference)" in plan.out
    planned = {s["id"]: s for s in json.loads(mvgen("plan", str(shots), "--json").out)["shots"]}
    assert [planned[i]["reference_mode"] for i in "vlr"] == ["vace", "vace", ""]
    assert planned["v"]["image"] is None  # no start frame: VACE takes the picture itself

    r = mvgen("render", str(shots))
    assert r.code == 0, r
    # each shot's call was given its member's picture, whole, fitted inside the render size
    assert [len(refs) for _, refs in spy] == [1, 1, 0]
    m = json.loads((tmp_path / "s.json").read_text())
    rows = {s["id"]: s for s in m["shots"]}
    w, h = m["video"]["gen_width"], m["video"]["gen_height"]
    assert np.array_equal(spy[0][1][0], fit_inside(tmp_path / "violet.png", w, h))
    assert spy[0][1][0].shape == (h, int(150 * h / 200), 3)  # the pipeline pads it onto white
    clips = {
        i: read_clip(next((cache_dir / "shots").glob(f"*/{rows[i]['cache_key']}/clip.*"))) for i in "vlr"
    }
    for i in "vlr":  # the reference's latent frame was dropped before the decode: the planned count
        assert len(clips[i]) == rows[i]["num_frames"]
    # the same prompt ("a red square") paints the picture's colour: within delta E 12 of its mean
    for i in "vl":
        assert delta_e(_lab(clips[i]), _lab(pictures[i])) <= 12.0, (i, clips[i].reshape(-1, 3).mean(axis=0))
    assert dominant_colour(clips["r"]) == "red"  # and without a picture, the prompt's colour
    assert [rows[i]["reference_mode"] for i in "vlr"] == ["vace", "vace", ""]
    assert 0.0 <= rows["v"]["identity"] <= 1.0 and rows["r"]["identity"] is None
    # the report shows violet's picture beside her shot, which took it as a reference image
    page = (tmp_path / "s.html").read_text()
    section = re.search(r'<div class="cast" data-member="violet">(.*?)</div>', page).group(1)
    assert section.count("<img") == 2 and "1 v (reference)" in section

    # a new picture for leaf re-renders leaf's shot only: its hash is in the shot's key
    _picture(tmp_path / "leaf.png", "cyan", 120, 240, 3)
    again = mvgen("render", str(shots))
    assert again.code == 0, again
    second = {s["id"]: s for s in json.loads((tmp_path / "s.json").read_text())["shots"]}
    assert [i for i in "vlr" if not second[i]["cached"]] == ["l"]


def test_vace_has_no_start_frame_so_a_chain_is_refused(tmp_path, mvgen, empty_cache):
    synth_track(tmp_path / "t.wav", steady_beats(120, 6), duration_s=6.0)
    _picture(tmp_path / "violet.png", "purple", 64, 64, 1)
    _picture(tmp_path / "leaf.png", "green", 64, 64, 2)
    shots = write(
        tmp_path / "s.yaml",
        SHOTS.replace("length: 2}\n  - {id: r", "length: 2, transition: chain}\n  - {id: r"),
    )
    r = mvgen("validate", str(shots))
    assert r.code == 2, r
    assert re.search(
        r"s\.yaml:\d+:\d+: shots\[1\]\.transition: chain needs an image-to-video model, and 'tiny-vace' has none",
        r.err,
    ), r.err
    assert "tiny" in r.err and "Traceback" not in r.err


def test_a_ray_worker_gets_the_reference_pictures_not_their_paths(tmp_path, empty_cache):
    """What the driver hands a Ray worker's group: each shot's reference images as the model is
    given them, so a worker on a machine without the files renders the shot the same."""
    from mvgen.cache import ShotCache
    from mvgen.distributed import Group, _handed_over
    from mvgen.keys import ModelIdentity
    from mvgen.prepare import analyze, plan, prepare
    from mvgen.render.state import RenderState

    synth_track(tmp_path / "t.wav", steady_beats(120, 6), duration_s=6.0)
    _picture(tmp_path / "violet.png", "purple", 200, 150, 1)
    _picture(tmp_path / "leaf.png", "green", 120, 240, 2)
    job = prepare(write(tmp_path / "s.yaml", SHOTS))
    p = plan(job, analyze(job))
    ident = ModelIdentity("tiny-vace", "tiny-vace", "r")
    driver = RenderState(p, ident, ShotCache())
    frames, _ = _handed_over(driver, Group(slots=[0, 1, 2], work=1.0))
    worker = RenderState(p, ident, ShotCache())
    worker.last_frames.update(frames)
    for name in ("violet.png", "leaf.png"):
        (tmp_path / name).rename(tmp_path / f"gone-{name}")  # not on the worker's machine
    for s in p.shots:
        theirs, ours = worker.model_references(s), driver.model_references(s)
        assert len(theirs) == len(ours) == (s.id != "r")
        assert all(np.array_equal(a, b) for a, b in zip(theirs, ours, strict=True))
