"""The beat tracker on synthetic tracks with known beats: tempo, beat times, metre and bar phase,
sections, plots, and the errors a user sees for a track without beats.

The tracker's accuracy on real music is measured by scripts/eval_beats.py (docs/benchmarks.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mvgen import api
from mvgen.audio.grid import BeatGrid
from tests.conftest import write
from tests.synth import ramp_beats, steady_beats, synth_track

BEAT_TOL_S = 0.020
TEMPO_TOL = 0.01

# name, beat times, duration, synth options
CASES = [
    ("drums-70", steady_beats(70, 20), 20, {}),
    ("drums-95", steady_beats(95, 20), 20, {}),
    ("drums-120", steady_beats(120, 20), 20, {}),
    ("drums-140", steady_beats(140, 20), 20, {}),
    ("clicks-174", steady_beats(174, 20), 20, {"kit": "clicks"}),
    ("swing-110", steady_beats(110, 20), 20, {"swing": 2 / 3}),
    ("ramp-up-5pc", ramp_beats(114, 126, 30), 30, {}),
    ("ramp-down-5pc", ramp_beats(126, 114, 30), 30, {}),
    ("silent-intro-2s", steady_beats(100, 20, start_s=2.0), 20, {}),
    ("waltz-90", steady_beats(90, 20), 20, {"beats_per_bar": 3}),
    ("waltz-140", steady_beats(140, 20), 20, {"beats_per_bar": 3}),
]


def _analyze(tmp_path, name, beats, duration, opts) -> BeatGrid:
    path = synth_track(tmp_path / f"{name}.wav", beats, duration_s=duration, **opts)
    return api.analyze_audio(path, use_cache=False)


def _nearest(ref: np.ndarray, t: np.ndarray) -> np.ndarray:
    """|t - nearest ref| for every t."""
    return np.array([float(np.min(np.abs(ref - x))) for x in t]) if len(t) else np.zeros(0)


@pytest.mark.parametrize("name, beats, duration, opts", CASES, ids=[c[0] for c in CASES])
def test_synthetic_track(name, beats, duration, opts, tmp_path, empty_cache):
    grid = _analyze(tmp_path, name, beats, duration, opts)
    est = np.asarray(grid.beats_s)

    # Every detected beat is a real one, to within 20 ms ...
    err = _nearest(beats, est)
    assert err.max() <= BEAT_TOL_S, f"worst beat {err.max() * 1000:.1f} ms off"
    # ... and every real beat away from the track's edges was found (the first and last may be
    # dropped; the planner extrapolates the grid past them).
    inner = beats[(beats > beats[0] + 1.0) & (beats < duration - 1.0)]
    missed = inner[_nearest(est, inner) > BEAT_TOL_S]
    assert len(missed) == 0, f"missed beats at {missed}"

    true_bpm = 60.0 / float(np.mean(np.diff(beats)))
    assert abs(grid.tempo_bpm / true_bpm - 1) <= TEMPO_TOL, (grid.tempo_bpm, true_bpm)

    if name.startswith("silent-intro"):
        assert est[0] >= 2.0 - BEAT_TOL_S  # no beats invented in the silence
    if opts.get("kit") != "clicks":  # a metronome has no kick, bass or chords to find bars by
        per_bar = opts.get("beats_per_bar", 4)
        assert grid.beats_per_bar == per_bar
        bar_starts = beats[::per_bar]
        down_err = _nearest(bar_starts, np.asarray(grid.downbeats_s))
        assert down_err.max() <= BEAT_TOL_S, "downbeats are not on the bar starts"
        assert len(grid.downbeats_s) >= len(bar_starts) - 2


def test_tempo_change(tmp_path, empty_cache):
    """A medley: 8 bars at 100 BPM, then 13 bars at 130 BPM. One tempo for the whole track would
    miss a quarter of the second half's beats; the local tempo follows the change."""
    first = steady_beats(100, 19.2)
    second = steady_beats(130, 24.0)
    a = synth_track(tmp_path / "a.wav", first, duration_s=19.2)
    b = synth_track(tmp_path / "b.wav", second, duration_s=24.0, seed=3)
    sr = sf.info(str(a)).samplerate
    sf.write(str(tmp_path / "medley.wav"), np.concatenate([sf.read(str(a))[0], sf.read(str(b))[0]]), sr)
    truth = np.concatenate([first, second + 19.2])
    est = np.asarray(api.analyze_audio(tmp_path / "medley.wav", use_cache=False).beats_s)
    assert _nearest(truth, est).max() <= BEAT_TOL_S
    inner = truth[(truth > 1.0) & (truth < 42.2)]
    assert (_nearest(est, inner) <= BEAT_TOL_S).all()


def test_sections_and_section_length(tmp_path, empty_cache, mvgen):
    """A track whose second half changes sound (new drum pattern, chords, a lead) gets a section
    boundary on a downbeat near the change, and `length: section` cuts there."""
    bpm, dur = 120.0, 48.0
    beats = steady_beats(bpm, dur)
    a = synth_track(tmp_path / "a.wav", beats[beats < 24.0], duration_s=24.0)
    b = synth_track(
        tmp_path / "b.wav", beats[beats < 24.0], duration_s=24.0, beats_per_bar=4, swing=2 / 3, seed=5
    )
    ya, sr = sf.read(str(a))
    yb, _ = sf.read(str(b))
    t = np.arange(len(yb)) / sr
    lead = 0.25 * np.sign(np.sin(2 * np.pi * 660.0 * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t))
    sf.write(str(tmp_path / "song.wav"), np.concatenate([ya, 0.6 * yb + lead]).astype(np.float32), sr)

    r = mvgen("beats", str(tmp_path / "song.wav"), "--json")
    assert r.code == 0, r
    grid = json.loads(r.out)
    assert grid["sections_s"], "no section boundary found"
    change = min(grid["sections_s"], key=lambda s: abs(s - 24.0))
    assert abs(change - 24.0) <= 2.0 + 1e-6  # within one bar of the change
    assert _nearest(np.asarray(grid["downbeats_s"]), np.asarray(grid["sections_s"])).max() < 1e-6

    shots = write(
        tmp_path / "shots.yaml",
        "version: 1\naudio: song.wav\nmodel: tiny\ntiming: {fit: trim}\nshots:\n"
        "  - {id: verse, prompt: a, length: section}\n"
        "  - {id: rest, prompt: b, length: 4 sections}\n",
    )
    r = mvgen("plan", str(shots), "--json")
    assert r.code == 0, r
    plan = json.loads(r.out)
    # A section outlasts one tiny call: each shot may be several chained segments; its end is its last.
    end = {s["id"]: s["end_s"] for s in plan["shots"]}
    assert list(end) == ["verse", "rest"]
    bounds = [t for t in grid["sections_s"]] + [grid["duration_s"]]
    assert abs(end["verse"] - bounds[0]) <= 0.5 / plan["fps"]
    assert abs(end["rest"] - min(bounds[-1], plan["duration_s"])) <= 0.5 / plan["fps"]


def test_section_length_without_sections_runs_to_the_end(tmp_path, empty_cache, mvgen):
    synth_track(tmp_path / "t.wav", steady_beats(120, 10), duration_s=10.0)
    shots = write(
        tmp_path / "shots.yaml",
        "version: 1\naudio: t.wav\nmodel: tiny\nshots:\n  - {prompt: a, length: 4 beats}\n  - {prompt: b, length: section}\n",
    )
    r = mvgen("plan", str(shots), "--bpm", "120", "--json")
    assert r.code == 0, r
    plan = json.loads(r.out)
    end = {s["id"]: s["end_s"] for s in plan["shots"]}
    assert list(end.values()) == [2.0, 10.0]


def test_beats_plot(tmp_path, empty_cache, mvgen):
    track = synth_track(tmp_path / "t.wav", steady_beats(120, 12), duration_s=12.0)
    png = tmp_path / "out" / "grid.png"
    r = mvgen("beats", str(track), "--plot", str(png))
    assert r.code == 0, r
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.shape == (600, 1600, 3)
    # The downbeat red, the beat green and the envelope grey are all drawn.
    red = (img[..., 0] > 180) & (img[..., 1] < 90) & (img[..., 2] < 90)
    green = (img[..., 1] > 130) & (img[..., 0] < 90) & (img[..., 2] < 90)
    assert red.sum() > 500 and green.sum() > 500
    assert not list(png.parent.glob(".*tmp*"))  # written atomically, no temp left


def test_plan_plot_marks_the_cuts(tmp_path, empty_cache, mvgen):
    synth_track(tmp_path / "t.wav", steady_beats(120, 12), duration_s=12.0)
    shots = write(
        tmp_path / "shots.yaml", "version: 1\naudio: t.wav\nmodel: tiny\nshots:\n  - {prompt: a, length: 8}\n"
    )
    with_cuts, without = tmp_path / "cuts.png", tmp_path / "nocuts.png"
    assert mvgen("plan", str(shots), "--plot", str(with_cuts)).code == 0
    assert mvgen("beats", str(tmp_path / "t.wav"), "--plot", str(without)).code == 0
    purple = [
        int(((a[..., 0] > 120) & (a[..., 2] > 150) & (a[..., 1] < 130)).sum())
        for a in (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (with_cuts, without))
    ]
    assert purple[0] > 300 and purple[1] == 0  # the cut lines are there, and only in the plan's plot


def test_plot_needs_png_name(tmp_path, mvgen):
    track = synth_track(tmp_path / "t.wav", steady_beats(120, 4), duration_s=4.0)
    r = mvgen("beats", str(track), "--plot", str(tmp_path / "grid.jpg"))
    assert r.code == 2 and "must end in .png" in r.err
    assert not (tmp_path / "grid.jpg").exists()


@pytest.mark.parametrize(
    "make, message, hint",
    [
        (
            lambda p: sf.write(str(p), np.zeros(22050 * 4, dtype=np.float32), 22050),
            "the track is silent",
            "--bpm",
        ),
        (
            lambda p: sf.write(str(p), np.zeros(22050, dtype=np.float32) + 0.1, 22050),
            "1.00 s long",
            "at least 2 s",
        ),
        (lambda p: p.write_text("not audio\n" * 50), "not a readable audio file", "WAV, FLAC"),
    ],
    ids=["silent", "too-short", "not-audio"],
)
def test_tracks_without_beats(make, message, hint, tmp_path, empty_cache, mvgen):
    make(tmp_path / "t.wav")
    r = mvgen("beats", str(tmp_path / "t.wav"))
    assert r.code == 2, r
    first, second = r.err.strip().splitlines()
    assert first.startswith(f"mvgen: error: {tmp_path / 't.wav'}: ") and message in first
    assert second.startswith("hint: ") and hint in second
    assert "Traceback" not in r.err


def test_silent_track_with_an_override_plans(tmp_path, empty_cache, mvgen):
    """The hint for a silent track works: a fixed tempo skips detection."""
    sf.write(str(tmp_path / "t.wav"), np.zeros(22050 * 8, dtype=np.float32), 22050)
    r = mvgen("beats", str(tmp_path / "t.wav"), "--bpm", "120", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["beats_s"][:3] == [0.0, 0.5, 1.0]


def test_analysis_is_cached_by_content(tmp_path, empty_cache):
    a = synth_track(tmp_path / "a.wav", steady_beats(120, 8), duration_s=8.0)
    first = api.analyze_audio(a)
    entries = list((empty_cache / "beats").glob("*.json"))
    assert len(entries) == 1
    # Tamper with the cache entry: the next call must return what the cache says.
    data = json.loads(entries[0].read_text())
    data["tempo_bpm"] = 77.0
    entries[0].write_text(json.dumps(data))
    b = tmp_path / "renamed.wav"
    b.write_bytes(a.read_bytes())  # same content, other name: same entry
    assert api.analyze_audio(b).tempo_bpm == 77.0
    assert first.tempo_bpm != 77.0
