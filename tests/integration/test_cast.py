"""A cast and storyboard stills through the CLI on the tiny model (issue 28): descriptions written
into the prompts, a member's picture and a shot's still as image-to-video start frames (the only way
the tiny's family takes a reference), the still's hash in the shot's key, identity scores in the
manifest and the report. The real diffusers pipelines run; a spy on the image-to-video class
records what it was given."""

from __future__ import annotations

import json
import re

import diffusers
import numpy as np
import pytest
from PIL import Image

from mvgen.cache import ShotCache
from mvgen.media.clips import read_clip
from mvgen.media.colour import delta_e, rgb_to_lab
from mvgen.media.stills import fit_still
from tests.conftest import write
from tests.synth import steady_beats, synth_track

SHOTS = """version: 1
model: tiny
audio: {path: t.wav, bpm: 120}
video: {width: 416, height: 256, fps: 8}
generation: {steps: 2, seed: 5}
timing: {fit: trim}
cast:
  mira: {description: a purple figure, images: [mira.png]}
  city: {description: a blue city at night}
shots:
  - {id: open, prompt: "{mira} walks left", length: 2}
  - {id: board, prompt: a field, image: board.png, length: 2}
  - {id: chained, prompt: "{mira} in {city}", transition: chain, length: 2}
  - {id: plain, prompt: an orange sky, cast: [city], length: 2}
"""


def _mira(path):
    """A purple figure with a pale head on a dark ground, taller than wide (the render is wider)."""
    h, w = 160, 120
    yy, xx = np.mgrid[0:h, 0:w]
    im = np.zeros((h, w, 3), np.uint8)
    im[:] = (30, 20, 40)
    im[(xx - 60) ** 2 / 900 + (yy - 95) ** 2 / 2500 < 1] = (150, 60, 200)
    im[(xx - 60) ** 2 + (yy - 40) ** 2 < 400] = (230, 190, 160)
    Image.fromarray(im).save(path)


@pytest.fixture
def spy(monkeypatch):
    calls: list[tuple[str, np.ndarray]] = []
    real = diffusers.WanImageToVideoPipeline.__call__

    def call(self, *args, **kwargs):
        calls.append((kwargs["prompt"], np.asarray(kwargs["image"].convert("RGB"))))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(diffusers.WanImageToVideoPipeline, "__call__", call)
    return calls


@pytest.fixture
def project(tmp_path):
    synth_track(tmp_path / "t.wav", steady_beats(120, 8), duration_s=8.0)
    _mira(tmp_path / "mira.png")
    Image.new("RGB", (200, 100), (40, 170, 60)).save(tmp_path / "board.png")  # green, twice as wide
    return write(tmp_path / "s.yaml", SHOTS)


def _mean_lab(frame: np.ndarray) -> np.ndarray:
    return rgb_to_lab(frame.reshape(-1, 3).mean(axis=0))


def test_a_cast_and_a_still_reach_the_model_and_the_records(project, tmp_path, mvgen, cache_dir, spy):
    plan = mvgen("plan", str(project))
    assert plan.code == 0, plan
    assert (
        "mira (start frame)" in plan.out
        and "still board.png" in plan.out
        and "mira (scored), city" in plan.out
    )
    planned = {s["id"]: s for s in json.loads(mvgen("plan", str(project), "--json").out)["shots"]}
    assert planned["open"]["reference_mode"] == "start" and planned["open"]["image"]["role"] == "mira"

    r = mvgen("render", str(project))
    assert r.code == 0, r
    m = json.loads((tmp_path / "s.json").read_text())
    rows = {s["id"]: s for s in m["shots"]}
    # the descriptions are in the prompts the model read: written for {name}, appended for `cast:`
    assert [rows[i]["prompt"] for i in ("open", "chained", "plain")] == [
        "a purple figure walks left", "a purple figure in a blue city at night", "an orange sky, a blue city at night"
    ]  # fmt: skip
    assert [p for p, _ in spy] == [
        "a purple figure walks left",
        "a field",
        "a purple figure in a blue city at night",
    ]
    # the image-to-video sibling started `open` on mira's picture and `board` on its still, each fitted
    # to the render size by `cover` (scaled to fill, the middle kept)
    (_, open_image), (_, board_image), _ = spy
    h, w = open_image.shape[:2]
    assert np.array_equal(open_image, fit_still(tmp_path / "mira.png", w, h, "cover"))
    assert np.array_equal(board_image, fit_still(tmp_path / "board.png", w, h, "cover"))
    # each clip starts on its still: the first frame's mean colour within delta E 6 of the still's
    for shot, still in (("open", open_image), ("board", board_image)):
        clip = read_clip(next((cache_dir / "shots").glob(f"*/{rows[shot]['cache_key']}/clip.*")))
        assert delta_e(_mean_lab(clip[0]), _mean_lab(still)) <= 6.0, shot
    # records: who is in each shot, which still it started on, how the pictures reached the model,
    # and each shot with a pictured member scored for likeness
    assert [rows[i]["cast"] for i in ("open", "board", "chained", "plain")] == [
        ["mira"],
        [],
        ["mira", "city"],
        ["city"],
    ]
    assert rows["open"]["image"]["role"] == "mira" and rows["board"]["image"]["role"] == "image"
    assert [rows[i]["reference_mode"] for i in ("open", "chained")] == ["start", ""]
    assert 0.0 <= rows["open"]["identity"] <= 1.0 and 0.0 <= rows["chained"]["identity"] <= 1.0
    assert rows["board"]["identity"] is None and rows["plain"]["identity"] is None
    # the report shows mira's picture beside the frames of the two shots she is in, with the scores
    page = (tmp_path / "s.html").read_text()
    section = re.search(r'<div class="cast" data-member="mira">(.*?)</div>', page).group(1)
    assert section.count("<img") == 3 and section.count("identity") == 2

    # a new still re-renders its shot and the shot chained from it, nothing else
    Image.new("RGB", (200, 100), (200, 40, 40)).save(tmp_path / "board.png")
    spy.clear()
    again = mvgen("render", str(project), "--json")
    assert again.code == 0, again
    second = {s["id"]: s for s in json.loads((tmp_path / "s.json").read_text())["shots"]}
    assert sorted(i for i, s in second.items() if not s["cached"]) == ["board", "chained"]
    assert second["board"]["image"]["sha256"] != rows["board"]["image"]["sha256"]
    assert second["open"]["cache_key"] == rows["open"]["cache_key"]


def test_contain_letterboxes_and_is_part_of_the_key(project, tmp_path, mvgen, cache_dir, spy):
    write(project, SHOTS.replace("fps: 8}", "fps: 8, image_fit: contain}"))
    r = mvgen("render", str(project))
    assert r.code == 0, r
    _, board_image = next(call for call in spy if call[0] == "a field")
    # the 2:1 green still fitted inside a wider-than-tall but less wide frame: black bars above and below
    assert board_image[0].max() == 0 and board_image[-1].max() == 0
    middle = board_image[board_image.shape[0] // 2]
    assert tuple(middle[middle.shape[0] // 2]) == pytest.approx((40, 170, 60), abs=2)
    cover = json.loads(mvgen("plan", str(write(tmp_path / "c.yaml", SHOTS)), "--json").out)
    contain = json.loads(mvgen("plan", str(project), "--json").out)
    assert cover["image_fit"] == "cover" and contain["image_fit"] == "contain"


def test_a_cast_member_in_no_shot_is_a_warning(project, mvgen, empty_cache):
    write(
        project,
        SHOTS.replace(
            "  city: {description: a blue city at night}\n",
            "  city: {description: a blue city at night}\n  car: {description: a red car}\n",
        ),
    )
    r = mvgen("validate", str(project))
    assert r.code == 0, r
    assert re.search(
        r"warning: .*s\.yaml:\d+:\d+: cast\.car: in no shot \(write \{car\} in a prompt", r.err
    ), r


def test_a_ray_worker_gets_the_stills_pixels_not_their_paths(project, tmp_path, empty_cache):
    """What the driver hands a Ray worker's group: the fitted still and the cast's pictures, so a
    worker on a machine without the files starts and scores the shot the same."""
    from mvgen.distributed import Group, _handed_over
    from mvgen.keys import ModelIdentity
    from mvgen.prepare import analyze, plan, prepare
    from mvgen.render.state import RenderState

    job = prepare(project)
    p = plan(job, analyze(job))
    ident = ModelIdentity("tiny", "tiny", "r")
    driver = RenderState(p, ident, ShotCache())
    frames, _ = _handed_over(driver, Group(slots=[0, 1], work=1.0))
    worker = RenderState(p, ident, ShotCache())
    worker.last_frames.update(frames)
    for name in ("mira.png", "board.png"):
        (tmp_path / name).rename(tmp_path / f"gone-{name}")  # not on the worker's machine
    for s in p.shots[:2]:
        image, digest = worker.still(s)
        assert np.array_equal(image, driver.still(s)[0]) and digest == driver.still_digest(s)
    assert worker.references(p.shots[0])[0][0] == "mira"
    assert np.array_equal(worker.references(p.shots[0])[0][1], driver.references(p.shots[0])[0][1])


def test_a_members_lora_is_on_every_shot_it_is_in_and_no_other(tmp_path, mvgen, cache_dir):
    """mira's LoRA (the shipped `sunset` look: every colour pulled towards orange) is active on her
    shots only: the blue shot with her comes out warm, the same blue shot without her blue."""
    from tests.integration.test_loras import REPO

    synth_track(tmp_path / "t.wav", steady_beats(120, 4), duration_s=4.0)
    (tmp_path / "sunset.safetensors").symlink_to(REPO / "tests" / "data" / "loras" / "sunset.safetensors")
    shots = write(
        tmp_path / "l.yaml",
        "version: 1\nmodel: tiny\naudio: {path: t.wav, bpm: 120}\nvideo: {width: 208, height: 128, fps: 8}\n"
        "generation: {steps: 4, seed: 4}\ntiming: {fit: trim}\n"
        "cast:\n  mira: {description: holding still, loras: [{path: sunset.safetensors}]}\n"
        "shots:\n  - {id: with, prompt: 'blue embers, {mira}', length: 2}\n"
        "  - {id: without, prompt: 'blue embers, holding still', length: 2}\n",
    )
    r = mvgen("render", shots)
    assert r.code == 0, r
    m = json.loads((tmp_path / "l.json").read_text())
    assert [len(s["loras"]) for s in m["shots"]] == [1, 0]
    assert m["shots"][0]["prompt"] == m["shots"][1]["prompt"] == "blue embers, holding still"
    warm = [
        read_clip(next((cache_dir / "shots").glob(f"*/{s['cache_key']}/clip.*"))).astype(float)
        for s in m["shots"]
    ]
    red_minus_blue = [c[..., 0].mean() - c[..., 2].mean() for c in warm]
    assert red_minus_blue[0] > red_minus_blue[1] + 100, red_minus_blue
