"""Counts with their plurals, near misses, and the beat plot's title that says them."""

from __future__ import annotations

from mvgen.audio.grid import BeatGrid
from mvgen.counts import RenderCounts, count_render
from mvgen.media.plot import grid_summary
from mvgen.wording import closest, did_you_mean, plural


def test_plurals_and_near_misses():
    assert [plural(n, "shot") for n in (0, 1, 2)] == ["0 shots", "1 shot", "2 shots"]
    assert closest("lenght", ["length", "prompt", "seed"]) == "length"
    assert closest("XYZ", ["length", "prompt"]) is None
    assert did_you_mean("Loop", ["loop", "trim"]) == "; did you mean `loop`?"
    assert did_you_mean("loop", ["loop"]) == ""  # not a miss


def _grid(sections: tuple[float, ...]) -> BeatGrid:
    beats = tuple(0.5 * k for k in range(16))
    return BeatGrid(120.0, 8.0, beats, beats[::4], sections)


def test_the_beat_plot_title_counts_sections_truthfully():
    """Issue 24: "1 sections" when none were found."""
    assert grid_summary(_grid(())) == "120.0 BPM, 4/4, 16 beats, 4 bars, no sections found"
    assert grid_summary(_grid((4.0,))).endswith("2 sections")
    one = BeatGrid(60.0, 2.0, (0.0,), (0.0,), ())
    assert grid_summary(one) == "60.0 BPM, 4/4, 1 beat, 1 bar, no sections found"


def test_render_counts_slots_shots_and_takes():
    # slots: a (3 takes, 1 made now), b, a repeated, c (cached), a failed slot (None)
    a, b, c = ["a1", "a2", "a3"], ["b"], ["c"]
    counts = count_render([a, b, a, c, None], made={"a2", "b"})
    assert counts == RenderCounts(slots=5, shots=3, generated=2, cached=1, takes=2)
    assert counts.describe() == "5 slots, 3 shots: 2 generated, 1 cached"
    more = count_render([a, b], made={"a1", "a2", "b"})
    assert more.describe() == "2 slots, 2 shots: 2 generated (3 takes), 0 cached"
