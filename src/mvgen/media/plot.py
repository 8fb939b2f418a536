"""A picture of the beat grid, to check it at a glance: ``mvgen beats --plot`` / ``mvgen plan --plot``.

Two panels. Top: the whole track's loudness with section boundaries (shaded spans), downbeats and,
for a plan, every cut labelled with its shot id. Bottom: a close-up of the first bars with the onset
envelope the tracker listens to, every beat, the downbeats and the cuts, where a wrong phase or
tempo octave is obvious.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mvgen.audio.grid import BeatGrid
from mvgen.files import atomic_path
from mvgen.wording import plural

ZOOM_S = 12.0
WIDTH_IN, HEIGHT_IN, DPI = 16.0, 6.0, 100


def _envelope(y: np.ndarray, sr: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """(times, peak amplitude) of ``y`` reduced to ``points`` columns."""
    hop = max(1, len(y) // points)
    n = len(y) // hop
    peaks = np.abs(y[: n * hop]).reshape(n, hop).max(axis=1) if n else np.zeros(0)
    return (np.arange(n) + 0.5) * hop / sr, peaks


PLOT_DATA_VERSION = 1


def curves(audio: Path, digest: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(onset times, onset strength, envelope times, envelope peaks) of ``audio``: what the plot
    draws of the sound. Kept in the cache by the audio's content hash (``digest``, when the caller
    has it; a few kB), so a re-render's report does not decode the song or load librosa again."""
    from mvgen.files import cache_root, sha256_file

    path: Path | None = None
    try:
        path = cache_root() / "plots" / f"{digest or sha256_file(audio)}-v{PLOT_DATA_VERSION}.npz"
        with np.load(path) as data:
            return data["onset_t"], data["onset"], data["env_t"], data["env"]
    except (OSError, KeyError, ValueError):
        pass
    import librosa

    from mvgen.audio.beats import HOP, SR, load_mono

    y = load_mono(audio)
    onset = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP).astype(np.float32)
    onset_t = librosa.frames_to_time(np.arange(len(onset)), sr=SR, hop_length=HOP)
    env_t, env = _envelope(y, SR, 4000)
    if path is None:
        return onset_t, onset, env_t, env
    try:
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, onset_t=onset_t, onset=onset, env_t=env_t, env=env.astype(np.float32))
    except OSError:  # a read-only cache: drawn all the same
        pass
    return onset_t, onset, env_t, env


def plot_grid(
    audio: Path,
    grid: BeatGrid,
    out: Path,
    *,
    cuts: Sequence[tuple[float, str]] = (),
    title: str | None = None,
    digest: str | None = None,
) -> Path:
    """Draw ``grid`` over ``audio`` into the PNG ``out`` (written atomically). ``cuts``: (time, shot id)
    of each cut of a plan; ``digest``: the audio's SHA-256 when the caller has it (see ``curves``)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    onset_t, onset, env_t, env = curves(audio, digest)
    beats = np.asarray(grid.beats_s)
    downs = np.asarray(grid.downbeats_s)
    bounds = [0.0, *grid.sections_s, grid.duration_s]

    fig, (full, zoom) = plt.subplots(2, 1, figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, height_ratios=[1, 1.3])
    head = title or audio.name
    fig.suptitle(f"{head}: {grid_summary(grid)} ({grid.source})", fontsize=12)
    for k in range(len(bounds) - 1):
        full.axvspan(bounds[k], bounds[k + 1], color=("#e8eef8" if k % 2 == 0 else "#f8efe4"), lw=0)
    full.fill_between(env_t, -env, env, color="#555555", lw=0)
    full.vlines(downs, -1, 1, color="#d62728", lw=0.6, alpha=0.6, label="downbeats")
    for t in grid.sections_s:
        full.axvline(t, color="#1f77b4", lw=2.0)
        full.text(t, 1.02, f"{t:.1f}s", color="#1f77b4", fontsize=8, ha="center", va="bottom")
    _draw_cuts(full, cuts, labels=True)
    full.set_xlim(0, grid.duration_s)
    full.set_ylim(-1.05, 1.15)
    full.set_yticks([])
    full.set_xlabel("seconds")
    full.legend(loc="lower right", fontsize=8)
    _draw_tempo(full, grid)

    start = float(downs[0]) if len(downs) else 0.0
    start = max(0.0, min(start - 0.5, grid.duration_s - ZOOM_S))
    end = min(grid.duration_s, start + ZOOM_S)
    sel = (onset_t >= start) & (onset_t <= end)
    peak = float(onset[sel].max()) if sel.any() else 1.0
    zoom.fill_between(
        onset_t[sel], 0, onset[sel] / (peak or 1.0), color="#999999", lw=0, label="onset strength"
    )
    inb = beats[(beats >= start) & (beats <= end)]
    ind = downs[(downs >= start) & (downs <= end)]
    zoom.vlines(inb, 0, 1, color="#2ca02c", lw=1.0, label="beats")
    zoom.vlines(ind, 0, 1.1, color="#d62728", lw=2.2, label="downbeats")
    _draw_cuts(zoom, [(t, i) for t, i in cuts if start <= t <= end], labels=True)
    zoom.set_xlim(start, end)
    zoom.set_ylim(0, 1.25)
    zoom.set_yticks([])
    zoom.set_xlabel("seconds (close-up of the first bars)")
    zoom.legend(loc="upper right", fontsize=8, ncols=4)

    fig.tight_layout()
    out = Path(out)
    from mvgen.ownership import MARK

    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": MARK})  # mvgen's mark: see ownership.py
    plt.close(fig)
    return out


def _draw_tempo(ax, grid: BeatGrid) -> None:
    """The tempo through the track on a right-hand BPM axis: the tracked curve where the tempo moves,
    else a flat line at the one tempo (single beat intervals wobble by a 23 ms analysis frame, which
    would draw a steady track as a jittery one)."""
    if grid.tempo_curve:
        t, bpm = np.array(grid.tempo_curve).T
    elif len(grid.beats_s) > 1:
        t, bpm = np.array([grid.beats_s[0], grid.beats_s[-1]]), np.full(2, grid.tempo_bpm)
    else:
        return
    tempo = ax.twinx()
    tempo.plot(t, bpm, color="#ff7f0e", lw=1.4, label="tempo")
    lo, hi = float(np.min(bpm)), float(np.max(bpm))
    pad = max(5.0, 0.15 * (hi - lo))
    tempo.set_ylim(lo - pad, hi + pad)
    tempo.set_ylabel("BPM", color="#ff7f0e", fontsize=8)
    tempo.tick_params(axis="y", colors="#ff7f0e", labelsize=8)


def grid_summary(grid: BeatGrid) -> str:
    """``120.0 BPM, 4/4, 80 beats, 20 bars, 3 sections`` (or ``no sections found``)."""
    sections = plural(len(grid.sections_s) + 1, "section") if grid.sections_s else "no sections found"
    tempo = f"{grid.tempo_bpm:.1f} BPM"
    if grid.tempo_curve:
        lo, hi = grid.tempo_range_bpm
        tempo += f" (moving, {lo:.0f}-{hi:.0f})"
    sure = "" if grid.confidence is None else f", confidence {grid.confidence.overall:.2f}"
    return (
        f"{tempo}, {grid.beats_per_bar}/4, {plural(len(grid.beats_s), 'beat')}, "
        f"{plural(len(grid.downbeats_s), 'bar')}, {sections}{sure}"
    )


def _draw_cuts(ax, cuts: Sequence[tuple[float, str]], *, labels: bool) -> None:
    if not cuts:
        return
    times = [t for t, _ in cuts]
    ax.vlines(times, *ax.get_ylim(), color="#9467bd", lw=1.4, linestyles="dashed", label="cuts")
    if labels:
        top = ax.get_ylim()[1]
        for t, shot_id in cuts:
            ax.text(t, top, f" {shot_id}", color="#9467bd", fontsize=7, rotation=90, ha="left", va="top")
