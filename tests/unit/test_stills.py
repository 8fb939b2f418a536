"""Cast prompts, stills fitted to a render size, and the identity score's fallback (issue 28)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mvgen.config.loader import parse_shotlist_text
from mvgen.config.stills import still_digest
from mvgen.media.score import identity, lab_histogram_overlap, score
from mvgen.media.stills import fit_still

HEAD = "cast:\n  mira: {description: a woman in a red coat}\n  car: {description: an old blue car}\nshots:\n"


@pytest.mark.parametrize(
    "shot, prompt, members",
    [
        ("{prompt: '{mira} runs'}", "a woman in a red coat runs", ["mira"]),
        (
            "{prompt: '{mira} drives { car }'}",
            "a woman in a red coat drives an old blue car",
            ["mira", "car"],
        ),
        (
            "{prompt: 'a street', cast: [car, mira]}",
            "a street, an old blue car, a woman in a red coat",
            ["car", "mira"],
        ),
        (
            "{prompt: '{mira} waits', cast: [mira, car]}",
            "a woman in a red coat waits, an old blue car",
            ["mira", "car"],
        ),
        ("{prompt: 'a set {{x}} for {mira}'}", "a set {x} for a woman in a red coat", ["mira"]),
    ],
)
def test_the_prompt_the_model_reads(shot, prompt, members, tmp_path):
    shots = parse_shotlist_text(HEAD + f"  - {shot}\nstyle: film grain\n", tmp_path / "s.yaml")
    assert shots.full_prompt(shots.shots[0]) == f"{prompt}, film grain"
    assert shots.members_of(shots.shots[0]) == members
    assert shots.unused_cast() == [m for m in ("mira", "car") if m not in members]


def _halves(path, size=(200, 100)):
    """Left half red, right half blue."""
    a = np.zeros((size[1], size[0], 3), np.uint8)
    a[:, : size[0] // 2] = (255, 0, 0)
    a[:, size[0] // 2 :] = (0, 0, 255)
    Image.fromarray(a).save(path)
    return path


def test_cover_fills_and_crops_the_middle_contain_shows_all_on_black(tmp_path):
    still = _halves(tmp_path / "h.png")
    cover = fit_still(still, 64, 64, "cover")  # 2:1 into a square: the middle 100 x 100 is kept
    assert cover.shape == (64, 64, 3)
    assert tuple(cover[32, 2]) == (255, 0, 0) and tuple(cover[32, 61]) == (0, 0, 255)
    assert cover.min(axis=2).max() == 0 and (cover.max(axis=2) > 200).all()  # no black anywhere
    contain = fit_still(still, 64, 64, "contain")  # the whole still in 64 x 32, black above and below
    assert contain[:15].max() == 0 and contain[-15:].max() == 0
    assert tuple(contain[32, 2]) == (255, 0, 0) and tuple(contain[32, 61]) == (0, 0, 255)
    assert still_digest("ab", "cover") != still_digest("ab", "contain")


def test_transparency_is_flattened_onto_black(tmp_path):
    a = np.zeros((80, 80, 4), np.uint8)
    a[:, :40] = (0, 255, 0, 255)  # left opaque green, right transparent
    Image.fromarray(a, "RGBA").save(tmp_path / "t.png")
    out = fit_still(tmp_path / "t.png", 80, 80)
    assert tuple(out[40, 10]) == (0, 255, 0) and tuple(out[40, 70]) == (0, 0, 0)


def _figure(ground, body, h=96, w=64):
    yy, xx = np.mgrid[0:h, 0:w]
    im = np.zeros((h, w, 3), np.uint8)
    im[:] = ground
    im[(xx - w / 2) ** 2 / (w * w / 16) + (yy - h * 0.6) ** 2 / (h * h / 9) < 1] = body
    return im


def test_identity_ranks_a_look_alike_above_a_stranger():
    ref = _figure((30, 20, 40), (150, 60, 200))
    alike = np.stack([_figure((35, 25, 45), (140, 70, 190), 64, 96)] * 8)  # another shape of frame
    stranger = np.stack([_figure((200, 200, 180), (20, 140, 40), 64, 96)] * 8)
    same, other = identity(alike, [("mira", ref)]), identity(stranger, [("mira", ref)])
    assert 0.6 < same <= 1.0 and 0.0 <= other < 0.2
    # a member's likeness is that of their best picture
    assert identity(alike, [("mira", stranger[0]), ("mira", ref)]) == pytest.approx(same)
    assert lab_histogram_overlap(ref, ref) == pytest.approx(1.0)
    # identity counts in a take's score
    base = {"motion": 0.03, "flicker": 0.0, "black": 0.0, "frozen": 0.0, "prompt_match": None}
    assert score({**base, "identity": same}) > score({**base, "identity": other})
