"""Colour anchoring of chained shots and the eased camera moves, on synthetic frames."""

from __future__ import annotations

import numpy as np
import pytest

from mvgen.media.assemble import camera_window, ease
from mvgen.media.colour import anchor_colours, colour_stats, delta_e, lab_to_rgb, rgb_to_lab


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((9, 48, 80, 3)) * 180 + 40).astype(np.uint8)


def _drift(frames: np.ndarray, de: float) -> np.ndarray:
    lab = rgb_to_lab(frames)
    lab[..., 1] += 0.6 * de  # a shift of exactly `de` in the a*/b* plane
    lab[..., 2] += 0.8 * de
    return lab_to_rgb(lab)


def test_lab_round_trip_is_exact_on_8_bit_colours():
    frames = _texture()
    assert np.array_equal(lab_to_rgb(rgb_to_lab(frames)), frames)


def test_anchor_stops_drift_compounding_over_five_extensions():
    anchor = colour_stats(_texture())
    unanchored = anchored = _texture()
    for _ in range(5):
        unanchored = _drift(unanchored, 10.0)
        anchored, before, after = anchor_colours(_drift(anchored, 10.0), anchor)
        assert 8.0 < before < 12.0  # each link drifted by about dE 10 ...
    assert delta_e(colour_stats(unanchored)[0], anchor[0]) > 30  # ... which compounds when left alone
    assert delta_e(colour_stats(anchored)[0], anchor[0]) <= 2.0  # and stays put when anchored
    assert after <= 2.0


def test_anchor_keeps_the_picture():
    """Only the colour statistics move: the picture's structure (its luminance detail) stays."""
    frames = _texture(3)
    out, _, _ = anchor_colours(_drift(frames, 10.0), colour_stats(frames))
    corr = np.corrcoef(rgb_to_lab(out)[..., 0].ravel(), rgb_to_lab(frames)[..., 0].ravel())[0, 1]
    assert corr > 0.99


@pytest.mark.parametrize(
    "zoom, pan", [((1.0, 1.5), (0.0, 0.1)), ((1.3, 1.0), (0.1, -0.1)), ((2.0, 2.0), (0.0, 0.0))]
)
def test_camera_is_monotone_and_smooth(zoom, pan):
    n = 48
    cam = {"zoom": list(zoom), "pan": list(pan)}
    path = np.array([camera_window(cam, (k + 0.5) / n, 640, 360) for k in range(n)])
    zooms, xs = path[:, 0], path[:, 1]
    # monotone from start to end value ...
    assert np.all(np.diff(zooms) * np.sign(zoom[1] - zoom[0] or 1) >= -1e-12)
    assert zooms[0] == pytest.approx(zoom[0], abs=abs(zoom[1] - zoom[0]) * 0.01 + 1e-9)
    assert zooms[-1] == pytest.approx(zoom[1], abs=abs(zoom[1] - zoom[0]) * 0.01 + 1e-9)
    # ... with no step larger than the eased curve's steepest slope (1.5 x the mean step)
    assert np.max(np.abs(np.diff(zooms))) <= 1.5 * abs(zoom[1] - zoom[0]) / n + 1e-9
    # the window never leaves the frame
    half = 640 / (2 * zooms)
    assert np.all(xs - half >= -1e-9) and np.all(xs + half <= 640 + 1e-9)


def test_ease_is_a_smoothstep():
    u = np.linspace(0, 1, 101)
    e = np.array([ease(x) for x in u])
    assert e[0] == 0 and e[-1] == 1 and np.all(np.diff(e) >= 0)
    assert ease(0.5) == pytest.approx(0.5)


def test_pulse_pushes_on_every_beat_and_settles():
    from mvgen.media.assemble import pulse_factor

    beats = (0.5, 1.0, 1.5)
    assert pulse_factor(0.03, 0.2, beats) == 1.0  # before the first beat
    for b in beats:
        assert pulse_factor(0.03, b, beats) == pytest.approx(1.03)  # the push lands on the beat
        assert 1.0 < pulse_factor(0.03, b + 0.1, beats) < pulse_factor(0.03, b + 0.05, beats) < 1.03
        assert pulse_factor(0.03, b + 0.45, beats) < 1.0 + 0.03 * 0.06  # settled before the next beat
    assert pulse_factor(0.0, 1.0, beats) == 1.0


def test_plan_carries_the_beats_for_pulses():
    from pathlib import Path

    from mvgen.audio.grid import BeatGrid
    from mvgen.config import parse_shotlist_text
    from mvgen.config.presets import all_presets
    from mvgen.planner import plan_video
    from mvgen.timeline import RenderPlan

    beats = tuple(i * 0.5 for i in range(20))
    sl = parse_shotlist_text("shots:\n  - {prompt: a, camera: {pulse: 0.05}}\n", Path("s.yaml"))
    plan = plan_video(sl, BeatGrid(120.0, 10.0, beats, beats[::4], ()), all_presets()["tiny"])
    assert plan.beats_s == beats and plan.shots[0].camera["pulse"] == 0.05
    assert RenderPlan.from_json(plan.to_json()) == plan
