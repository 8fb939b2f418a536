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
