"""Beat analysis with librosa: tempo, beats (latency-corrected), downbeats, sections.

Results are cached by the audio file's content hash, so re-planning or re-rendering the same
track never re-analyses it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from mvgen.audio.grid import BeatGrid
from mvgen.audio.probe import AudioInfo
from mvgen.errors import AudioError
from mvgen.files import atomic_write_text, cache_root, sha256_file

log = logging.getLogger(__name__)

ANALYSIS_VERSION = 2
SR = 22050
HOP = 512
# librosa's beat times sit late: the onset envelope peaks a frame or so after the attack.
# Measured on ../shared/eval/beats: +9..+40 ms on real music, +32 ms on synthetic clicks.
LATENCY_S = 0.030
SILENCE_RMS = 1e-4


def _load_mono(path: Path) -> np.ndarray:
    """Mono float32 samples at ``SR``: libsndfile decodes (WAV, FLAC, OGG, MP3), ffmpeg for the rest
    (M4A/AAC...), soxr resamples (what librosa.load does inside, without its 2 s of overhead)."""
    import soundfile as sf
    import soxr

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:
        data, rate = _decode_with_ffmpeg(path)
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != SR:
        y = soxr.resample(y, rate, SR, quality="HQ")
    return np.ascontiguousarray(y, dtype=np.float32)


def _decode_with_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    import tempfile

    import soundfile as sf

    from mvgen.errors import EncodeError
    from mvgen.ffmpeg import run_ffmpeg

    with tempfile.TemporaryDirectory(prefix="mvgen-decode-") as tmp:
        wav = Path(tmp) / "audio.wav"
        try:
            run_ffmpeg(
                ["-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(SR), "-f", "wav", str(wav)],
                what=f"decoding {path.name}",
            )
        except EncodeError as exc:
            raise AudioError(f"{path}: cannot decode the audio: {exc.message}") from None
        data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    return data, int(rate)


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = float(np.std(x))
    return (x - float(np.mean(x))) / sd if sd > 1e-9 else np.zeros_like(x)


def _bar_phase(y: np.ndarray, beat_frames: np.ndarray, per_bar: int) -> int:
    """Which beat (0..per_bar-1) starts the bar. Two cues of popular music, z-scored and added:
    the low end (kick, bass notes) hits hardest on the downbeat, and chords change on it."""
    import librosa

    if len(beat_frames) < per_bar * 2:
        return 0
    onset_low = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP, fmax=200.0, n_mels=8)
    low = onset_low[np.clip(beat_frames, 0, len(onset_low) - 1)]
    chroma = librosa.feature.chroma_stft(y=y, sr=SR, hop_length=HOP)
    sync = librosa.util.sync(chroma, beat_frames, aggregate=np.median)[:, 1:]  # column i: beat i..i+1
    sync = sync / (np.linalg.norm(sync, axis=0, keepdims=True) + 1e-9)
    change = np.concatenate([[0.0], 1.0 - np.sum(sync[:, 1:] * sync[:, :-1], axis=0)])
    n = min(len(low), len(change))
    score = _zscore(low[:n]) + _zscore(change[:n])
    scores = [float(np.mean(score[p::per_bar])) for p in range(per_bar)]
    return int(np.argmax(scores))


def _sections(y: np.ndarray, beat_frames: np.ndarray, downbeats: np.ndarray, duration: float) -> list[float]:
    """Structural boundaries (verse -> chorus ...): a checkerboard-kernel novelty curve over the
    self-similarity of beat-synchronous timbre + harmony, its strongest peaks (about one per 20 s,
    at least 8 beats apart), each snapped to the nearest downbeat."""
    import librosa
    import scipy.signal

    if len(beat_frames) < 32 or duration < 20 or len(downbeats) < 2:
        return []
    mfcc = librosa.feature.mfcc(y=y, sr=SR, hop_length=HOP, n_mfcc=13)
    chroma = librosa.feature.chroma_stft(y=y, sr=SR, hop_length=HOP)
    feats = np.vstack([mfcc, chroma])
    sync = librosa.util.sync(feats, beat_frames, aggregate=np.median)
    sync = (sync - sync.mean(axis=1, keepdims=True)) / (sync.std(axis=1, keepdims=True) + 1e-9)
    unit = sync / (np.linalg.norm(sync, axis=0, keepdims=True) + 1e-9)
    ssm = unit.T @ unit
    half = 8  # beats on each side of a candidate boundary
    sign = np.concatenate([-np.ones(half), np.ones(half)])
    kernel = np.outer(sign, sign) * np.outer(np.hanning(2 * half), np.hanning(2 * half))
    n = ssm.shape[0]
    padded = np.pad(ssm, half, mode="edge")
    novelty = np.array([np.sum(padded[i : i + 2 * half, i : i + 2 * half] * kernel) for i in range(n)])
    peaks, props = scipy.signal.find_peaks(novelty, distance=8, height=0)
    if len(peaks) == 0:
        return []
    want = max(1, int(round(duration / 20.0)))
    strongest = peaks[np.argsort(props["peak_heights"])[::-1][:want]]
    bound_frames = beat_frames[np.clip(strongest, 0, len(beat_frames) - 1)]
    times = librosa.frames_to_time(bound_frames, sr=SR, hop_length=HOP) - LATENCY_S
    out: set[float] = set()
    for t in times:
        snapped = float(downbeats[np.argmin(np.abs(downbeats - t))])
        if 2.0 < snapped < duration - 2.0:
            out.add(snapped)
    return sorted(out)


# Tempo prior for choosing between a grid and its double/half: log-normal around 120 BPM, where
# most popular music sits; one octave away costs a factor of ~0.6.
PRIOR_BPM = 120.0
PRIOR_OCTAVES = 1.0


def _grid_score(onset: np.ndarray, frames: np.ndarray, bpm: float) -> float:
    """How well a beat grid explains the onsets (mean onset strength at its beats, relative to the
    track's mean), weighted by the tempo prior."""
    if len(frames) < 4:
        return 0.0
    hit = float(np.mean(onset[np.clip(frames, 0, len(onset) - 1)])) / (float(np.mean(onset)) + 1e-9)
    prior = float(np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2))
    return hit * prior


def _track_with_octave_check(onset: np.ndarray) -> np.ndarray:
    """librosa's dynamic-programming tracker, then a tempo-octave check: its typical failure is a
    grid at half or double the musical tempo (e.g. on the snare of a 120 BPM beat, at 60). Re-track
    at x2 and x0.5 and keep the grid whose beats best explain the onsets under the tempo prior."""
    import librosa

    tempo, frames = librosa.beat.beat_track(onset_envelope=onset, sr=SR, hop_length=HOP, trim=False)
    frames = np.asarray(frames, dtype=int)
    if len(frames) < 4:
        return frames
    bpm = 60.0 / float(np.median(np.diff(frames)) * HOP / SR)
    best, best_score = frames, _grid_score(onset, frames, bpm)
    for factor in (2.0, 0.5):
        cand_bpm = bpm * factor
        if not 50.0 <= cand_bpm <= 220.0:
            continue
        _, cand = librosa.beat.beat_track(
            onset_envelope=onset, sr=SR, hop_length=HOP, bpm=cand_bpm, trim=False
        )
        cand = np.asarray(cand, dtype=int)
        score = _grid_score(onset, cand, cand_bpm)
        if score > best_score * 1.05:  # a clear win only: keep librosa's grid on a near tie
            best, best_score = cand, score
    return best


def analyze_samples(y: np.ndarray, duration_s: float, *, name: str = "audio") -> BeatGrid:
    """The beat grid of mono samples at ``SR``. ``AudioError`` when there is no usable beat."""
    import librosa

    if len(y) == 0 or float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) < SILENCE_RMS:
        raise AudioError(f"{name}: the track is silent; there are no beats to cut to")
    onset = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP)
    frames = _track_with_octave_check(onset)
    if len(frames) < 4:
        raise AudioError(f"{name}: no steady beat found ({len(frames)} beats detected)")
    beats = librosa.frames_to_time(frames, sr=SR, hop_length=HOP) - LATENCY_S
    keep = beats >= 0
    beats, frames = beats[keep], frames[keep]
    # Tempo from a least-squares line through the beats: beat times are quantised to 23 ms frames,
    # so single intervals alternate (0.488/0.511 s at 120 BPM) and their median is biased.
    slope = float(np.polyfit(np.arange(len(beats)), beats, 1)[0])
    tempo_bpm = 60.0 / slope
    per_bar = 4
    phase = _bar_phase(y, frames, per_bar)
    downbeats = beats[phase::per_bar]
    sections = _sections(y, frames, downbeats, duration_s)
    return BeatGrid(
        tempo_bpm=tempo_bpm,
        duration_s=duration_s,
        beats_s=tuple(float(t) for t in beats),
        downbeats_s=tuple(float(t) for t in downbeats),
        sections_s=tuple(sections),
        beats_per_bar=per_bar,
        source="librosa",
    )


def _cache_file(digest: str) -> Path:
    return cache_root() / "beats" / f"{digest}-v{ANALYSIS_VERSION}.json"


def analyze(info: AudioInfo, *, digest: str | None = None, use_cache: bool = True) -> BeatGrid:
    """The beat grid of a probed audio file, from the cache when this exact file was seen before."""
    digest = digest or sha256_file(info.path)
    cached = _cache_file(digest)
    if use_cache and cached.is_file():
        try:
            return BeatGrid.from_json(json.loads(cached.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable beat cache entry %s", cached)
    y = _load_mono(info.path)
    grid = analyze_samples(y, len(y) / SR if len(y) else info.duration_s, name=str(info.path))
    grid = BeatGrid(**{**grid.__dict__, "duration_s": info.duration_s})
    # Round-trip through the cache's JSON so that a fresh analysis and a cached one are identical
    # (plans and render keys built from them must not differ in the 7th decimal).
    grid = BeatGrid.from_json(json.loads(json.dumps(grid.to_json())))
    if use_cache:
        try:
            atomic_write_text(cached, json.dumps(grid.to_json()))
        except OSError as exc:  # a read-only cache must not stop a render
            log.warning("cannot write beat cache %s: %s", cached, exc)
    return grid
