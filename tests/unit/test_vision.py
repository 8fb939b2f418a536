"""The measures the tests with eyes and scripts/train_tiny.py rely on, checked on clips whose truth
is known: the synthetic world the tiny model is trained on, and real cuts between its clips."""

from __future__ import annotations

import numpy as np
import pytest

from mvgen.families.base import word_tokenizer
from mvgen.media.vision import (
    COLOURS,
    MOTIONS,
    PALETTE,
    detect_cuts,
    dominant_colour,
    motion_of,
    nearest_colour,
    synthetic_clip,
    synthetic_continuation,
)


def _u8(clip: np.ndarray) -> np.ndarray:
    return (clip * 255 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("colour", COLOURS)
def test_each_named_colour_is_read_back_from_its_clip(colour):
    rng = np.random.default_rng(COLOURS.index(colour))
    clip = _u8(synthetic_clip(colour, "still", 5, 64, 96, rng))
    assert dominant_colour(clip) == colour
    assert nearest_colour(np.array(PALETTE[colour]) * 255) == colour


@pytest.mark.parametrize("motion", MOTIONS)
def test_each_motion_is_read_back_by_the_flow_fit(motion):
    rng = np.random.default_rng(7)
    for colour in ("red", "cyan", "white"):
        clip = _u8(synthetic_clip(colour, motion, 17, 128, 208, rng))
        seen, fit = motion_of(clip)
        assert seen == motion, (colour, fit)


def test_the_flow_fit_reads_direction_from_pixels_not_labels():
    rng = np.random.default_rng(3)
    right = _u8(synthetic_clip("blue", "right", 17, 96, 160, rng))
    assert motion_of(right[::-1])[0] == "left"  # the same clip played backwards
    assert motion_of(np.swapaxes(right, 1, 2))[0] == "down"  # transposed: x becomes y
    zoom = _u8(synthetic_clip("green", "zoom in", 17, 96, 160, rng))
    assert motion_of(zoom[::-1])[0] == "zoom out"


@pytest.mark.parametrize("size", [(128, 208), (64, 96)])
def test_a_pan_moves_one_patch_every_four_frames_at_any_size(size):
    # the tiny model sees 16-px patches and 4-frame latent frames: speed is set in pixels
    rng = np.random.default_rng(5)
    left = synthetic_clip("orange", "left", 9, *size, rng)
    assert np.abs(left[4][:, :-16] - left[0][:, 16:]).max() < 1e-6  # the picture moved 16 px left
    up = synthetic_clip("orange", "up", 9, *size, rng)
    assert np.abs(up[8][:-32] - up[0][32:]).max() < 1e-6
    assert np.abs(left[4] - left[0]).max() > 0.2  # and it is not a flat field


def test_a_continuation_starts_at_the_scene_and_turns_to_the_new_colour_and_motion():
    rng = np.random.default_rng(9)
    first, second = synthetic_continuation(("blue", "left"), ("yellow", "up"), (9, 17), 96, 160, rng)
    assert np.abs(second[0] - first[-1]).max() < 1e-9  # the same frame: the camera carries on
    assert dominant_colour(_u8(first)) == "blue"
    assert dominant_colour(_u8(second[8:])) == "yellow"  # eased in over the first half
    assert motion_of(_u8(second[8:]))[0] == "up"
    assert motion_of(_u8(first))[0] == "left"


def test_cuts_are_found_between_scenes_and_not_inside_a_moving_one():
    rng = np.random.default_rng(1)
    parts = [_u8(synthetic_clip(c, m, n, 64, 96, rng)) for c, m, n in
             [("red", "left", 10), ("blue", "up", 7), ("white", "zoom in", 12), ("purple", "right", 9)]]  # fmt: skip
    assert detect_cuts(np.concatenate(parts)) == [10, 17, 29]
    assert detect_cuts(parts[2]) == []
    # a slow dissolve is no cut either
    a, b = parts[0][-1].astype(float), parts[1][0].astype(float)
    fade = np.stack([(a * (1 - t) + b * t).astype(np.uint8) for t in np.linspace(0, 1, 24)])
    assert detect_cuts(fade) == []


def test_the_word_tokenizer_knows_its_words_in_any_case_and_nothing_else():
    tok = word_tokenizer(["red", "zoom", "in"])
    ids = tok("A RED square, Zoom in!").input_ids
    unk, eos = tok.unk_token_id, tok.eos_token_id
    red, zoom, in_ = (tok.convert_tokens_to_ids(w) for w in ("red", "zoom", "in"))
    assert ids == [unk, red, unk, unk, zoom, in_, unk, eos]
    assert len({red, zoom, in_, unk, eos}) == 5
