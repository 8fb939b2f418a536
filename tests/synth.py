"""Synthetic drum tracks with known beat times, for testing the beat tracker.

A bar starts with a deep kick and a bass note, beats 2 and 4 of a 4/4 bar get a snare (in 3/4: a
lighter kick on 2 and 3), every beat a kick, every off-beat a quiet hi-hat (late by ``swing``), and the
chord changes on every downbeat. ``beat_times`` says exactly where each beat falls, so tempo ramps and
silent intros are just different lists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

CHORDS = [(220.0, 277.2, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7), (164.8, 207.7, 246.9)]


def steady_beats(bpm: float, duration_s: float, *, start_s: float = 0.0) -> np.ndarray:
    period = 60.0 / bpm
    return np.arange(start_s, duration_s - 0.05, period)


def ramp_beats(bpm_from: float, bpm_to: float, duration_s: float, *, start_s: float = 0.0) -> np.ndarray:
    """Beats whose tempo changes linearly with time from ``bpm_from`` to ``bpm_to``."""
    times, t = [], start_s
    while t < duration_s - 0.05:
        times.append(t)
        frac = (t - start_s) / max(duration_s - start_s, 1e-9)
        t += 60.0 / (bpm_from + (bpm_to - bpm_from) * frac)
    return np.asarray(times)


def synth_track(
    path: Path,
    beat_times: np.ndarray,
    *,
    duration_s: float,
    beats_per_bar: int = 4,
    swing: float = 0.5,
    sr: int = 22050,
    channels: int = 1,
    fmt: str | None = None,
    subtype: str | None = None,
    seed: int = 0,
    kit: str = "drums",
) -> Path:
    """Write a track with beats at ``beat_times`` (beat 0 is a downbeat). ``swing`` places each
    off-beat hi-hat at that fraction of the beat (0.5 straight, 0.667 triplet swing). ``kit="clicks"``
    is a metronome instead: a 1.5 kHz click on every beat, 2.5 kHz on downbeats, nothing else."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sr))
    y = np.zeros(n)
    k_len = int(0.15 * sr)
    t = np.arange(k_len) / sr
    kick = np.sin(2 * np.pi * np.cumsum(55 + 90 * np.exp(-t * 35)) / sr) * np.exp(-t / 0.08)
    snare = rng.standard_normal(k_len) * np.exp(-t / 0.05) * 0.4
    hat = rng.standard_normal(k_len) * np.exp(-t / 0.01)
    hat = np.diff(hat, prepend=0.0) * 0.08  # high-passed: a tick, no body

    def add(sig: np.ndarray, at_s: float, gain: float) -> None:
        s = int(round(at_s * sr))
        if 0 <= s < n:
            e = min(n, s + len(sig))
            y[s:e] += sig[: e - s] * gain

    if kit == "clicks":
        tc = np.arange(int(0.03 * sr)) / sr
        for i, start in enumerate(beat_times):
            freq = 2500.0 if i % beats_per_bar == 0 else 1500.0
            add(np.sin(2 * np.pi * freq * tc) * np.exp(-tc / 0.008), start, 1.0)
        return _write(path, y, sr, channels, fmt, subtype)
    period = float(np.median(np.diff(beat_times))) if len(beat_times) > 1 else 0.5
    for i, start in enumerate(beat_times):
        pos = i % beats_per_bar
        nxt = beat_times[i + 1] if i + 1 < len(beat_times) else start + period
        add(kick, start, 1.0 if pos == 0 else 0.6)
        if beats_per_bar == 4 and pos in (1, 3):
            add(snare, start, 1.0)
        add(hat, start + swing * (nxt - start), 1.0)
        if pos == 0:
            bar_end = beat_times[i + beats_per_bar] if i + beats_per_bar < len(beat_times) else duration_s
            s = int(round(start * sr))
            bar_len = max(0, min(n, int(round(bar_end * sr))) - s)
            tb = np.arange(bar_len) / sr
            chord = CHORDS[(i // beats_per_bar) % len(CHORDS)]
            pad = sum(np.sin(2 * np.pi * f * tb) for f in chord) * 0.05 * np.exp(-tb / 1.5)
            pad += np.sin(2 * np.pi * chord[0] / 4 * tb) * 0.15 * np.exp(-tb / 0.4)
            y[s : s + bar_len] += pad
    return _write(path, y, sr, channels, fmt, subtype)


def _write(path: Path, y: np.ndarray, sr: int, channels: int, fmt: str | None, subtype: str | None) -> Path:
    y = y / np.max(np.abs(y)) * 0.8
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    sf.write(str(path), data.astype(np.float32), sr, format=fmt, subtype=subtype)
    return path
