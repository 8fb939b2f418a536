"""The beat tracker on generated full mixes (tests/music.py, exact ground truth): a tempo that moves,
the beat under syncopation, and the confidence a user sees (warnings in `mvgen beats` and `plan`,
`--json`). The figures on the whole generated set are in docs/benchmarks.md (scripts/eval_beats.py)."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from mvgen.audio.beats import SR, analyze_samples
from mvgen.audio.grid import BeatGrid
from tests import music
from tests.conftest import write

WINDOW_S = 0.070  # the +-70 ms of the usual beat F-measure


def _hits(truth: np.ndarray, est: np.ndarray) -> float:
    """Fraction of true beats (away from the first and last second) with a tracked beat within 70 ms."""
    inner = truth[(truth > truth[0] + 1.0) & (truth < truth[-1] - 1.0)]
    return float(np.mean([np.min(np.abs(est - t)) <= WINDOW_S for t in inner]))


def _grid(piece: music.Piece) -> BeatGrid:
    y = music.render(piece)
    return analyze_samples(y, len(y) / SR, name=piece.name)


def test_a_ritardando_is_tracked_on_a_moving_tempo_and_reported_as_its_curve():
    piece = music.ritardando()  # 128 -> 88 BPM over 40 s
    grid = _grid(piece)
    est = np.asarray(grid.beats_s)
    assert _hits(piece.beats_s, est) >= 0.95
    assert len(est) <= len(piece.beats_s) + 1  # no extra beats
    # The curve follows the true tempo within 4 % (median) and spans the slowing down.
    t, bpm = np.array(grid.tempo_curve).T
    assert np.median(np.abs(bpm / piece.local_bpm(t) - 1.0)) <= 0.04
    assert bpm[: len(bpm) // 5].mean() > 118 and bpm[-len(bpm) // 5 :].mean() < 98
    # The reported tempo is the curve's median, not one tempo fitted through it.
    assert abs(grid.tempo_bpm - float(np.median(bpm))) < 0.5
    lo, hi = grid.tempo_range_bpm
    assert lo < 100 < 118 < hi


def test_a_steady_track_stays_one_tempo_with_a_confident_grid(tmp_path, empty_cache, mvgen):
    piece = music.steady_pop()
    wav, _ = music.write(piece, tmp_path)
    r = mvgen("beats", str(wav), "--json")
    assert r.code == 0, r
    assert "warning" not in r.err
    data = json.loads(r.out)
    assert data["tempo_curve"] == []
    assert abs(data["tempo_bpm"] - 120.0) < 0.5
    assert data["confidence"]["overall"] >= 0.5
    assert set(data["confidence"]) == {"overall", "onsets", "tempo", "octave", "alternative_bpm"}
    assert _hits(piece.beats_s, np.asarray(data["beats_s"])) == 1.0


def test_syncopated_funk_is_tracked_on_the_beat_not_the_syncopations():
    """Bass, kick and ghost notes crowd the last sixteenth of each beat; the backbeat is on the beat."""
    piece = music.funk()
    assert _hits(piece.beats_s, np.asarray(_grid(piece).beats_s)) >= 0.9


def test_a_half_time_bridge_does_not_halve_the_songs_tempo():
    """140 BPM with bars 9-16 in a half-time feel (kick on 1, snare on 3): over the whole song the
    every-other-beat grid has the stronger onsets, but the song's own beat wins most of the track."""
    piece = music.half_time()
    grid = _grid(piece)
    assert abs(grid.tempo_bpm / 140.0 - 1.0) <= 0.02, grid.tempo_bpm
    assert _hits(piece.beats_s, np.asarray(grid.beats_s)) >= 0.95
    assert grid.confidence is not None and abs(grid.confidence.alternative_bpm / 70.0 - 1.0) < 0.05


def test_seven_eight_is_counted_in_its_eighths_on_a_steady_grid():
    """2+2+3 at 180 eighths a minute: every other eighth is on the accents in one bar and off them in
    the next, so it is not the beat. 180 BPM beats come 14 or 15 analysis frames apart: that
    quantisation is no unsteadiness, and the tempo part of the confidence stays full."""
    piece = music.seven_eight()
    grid = _grid(piece)
    assert abs(grid.tempo_bpm / 180.0 - 1.0) <= 0.02, grid.tempo_bpm
    assert _hits(piece.beats_s, np.asarray(grid.beats_s)) >= 0.95
    assert grid.confidence is not None and grid.confidence.tempo >= 0.9


def test_a_reggae_one_drop_is_tracked_on_its_beat_not_on_the_skank():
    """80 BPM: a chord stab on every off-beat, the only drum hit on beat 3. Every eighth has an
    onset, but the accents repeat every 8 eighths and not every 4, so the eighths are not the beat;
    and the beat is where the kick and bass are, not the skank."""
    piece = music.offbeat_reggae()
    grid = _grid(piece)
    assert abs(grid.tempo_bpm / 80.0 - 1.0) <= 0.02, grid.tempo_bpm
    est = np.asarray(grid.beats_s)
    assert _hits(piece.beats_s, est) >= 0.95
    assert _hits(est, piece.beats_s) >= 0.95  # and no tracked beat on an off-beat


def _random_notes(path) -> None:
    """Piano chords at random times: nothing to tap a foot to."""
    rng = np.random.default_rng(0)
    piece = music.Piece("random", np.arange(0.0, 30.0, 0.5), 4, 30.0, False, seed=1)
    for beat in np.sort(rng.uniform(0, 58, 70)):
        piece.add(
            "keys", float(beat), music.PROGRESSION[int(rng.integers(4))][0], float(rng.uniform(0.3, 1.0))
        )
    sf.write(str(path), music.render(piece), music.SR)


def test_music_without_a_pulse_warns_with_the_fix_in_beats_and_plan(tmp_path, empty_cache, mvgen):
    _random_notes(tmp_path / "free.wav")
    r = mvgen("beats", str(tmp_path / "free.wav"))
    assert r.code == 0, r
    warning = [line for line in r.err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1, r.err
    assert "beat grid uncertain (tempo " in warning[0] and "BPM" in warning[0]
    assert "`mvgen beats --plot`" in warning[0] and "--bpm" in warning[0] and "beats file" in warning[0]
    assert "confidence: " in r.out
    r = mvgen("beats", str(tmp_path / "free.wav"), "--json")
    assert json.loads(r.out)["confidence"]["overall"] < 0.5  # stdout stays JSON; the warning is on stderr
    shots = write(
        tmp_path / "s.yaml", "audio: free.wav\nshots:\n  - prompt: a red square\n    length: 4 beats\n"
    )
    r = mvgen("plan", str(shots), "--model", "tiny", "--json")
    assert r.code == 0, r
    assert "beat grid uncertain" in r.err
    assert json.loads(r.out)["beat_confidence"] < 0.5
    # A grid the user gives is not second-guessed.
    r = mvgen("plan", str(shots), "--model", "tiny", "--bpm", "90")
    assert r.code == 0 and "uncertain" not in r.err


def test_a_grid_cached_before_confidence_existed_still_loads():
    old = {
        "tempo_bpm": 120.0,
        "duration_s": 4.0,
        "beats_s": [0.0, 0.5],
        "downbeats_s": [0.0],
        "sections_s": [],
    }
    grid = BeatGrid.from_json(old)
    assert grid.confidence is None and grid.tempo_curve == () and grid.uncertainty() is None
    assert BeatGrid.from_json(json.loads(json.dumps(grid.to_json()))) == grid


def test_a_preview_warns_of_an_uncertain_grid_and_its_manifest_says_so(tmp_path, empty_cache, mvgen):
    """The animatic is where a grid gets checked before a long render: it warns like `render` does
    (the same event, from the same place that plans a render)."""
    _random_notes(tmp_path / "free.wav")
    shots = write(
        tmp_path / "s.yaml", "audio: free.wav\nshots:\n  - prompt: a red square\n    length: 4 beats\n"
    )
    r = mvgen("render", str(shots), "--model", "tiny", "--preview")
    assert r.code == 0, r
    assert "warning: free.wav: beat grid uncertain (tempo " in r.err + r.out
    manifest = json.loads((tmp_path / "s.preview.json").read_text())
    assert manifest["audio"]["beat_confidence"] < 0.5
