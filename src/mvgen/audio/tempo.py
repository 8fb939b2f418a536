"""Tempo and beat tracking: which pulse level, how the tempo moves, where the beats fall.

1. A local tempogram (autocorrelation of the onset envelope over ~6 s windows) on a log-tempo
   axis gives, over the whole track, the candidate pulse levels (its peaks, and their doubles,
   halves and thirds: 6/8 and 7/8 relate levels by three).
2. For each candidate, a Viterbi path through the tempogram near that level is the tempo curve: it
   drifts with a ritardando, breathes with rubato and jumps (at a price) at a medley's change.
   Where that curve is flat the track is tracked at one tempo, exactly as a steady track always was.
3. librosa's dynamic programme places the beats on that curve, and each candidate grid is scored
   by how much stronger the onsets are on its beats than half-way between them, weighted by a
   tempo prior: that contrast is what tells the beat from the off-beat and the pulse from its
   double or half.

Every constant tuned on data is in ``TrackerParams``; ``scripts/eval_beats.py --loo`` fits them by
leave-one-out cross-validation and reports held-out figures beside the in-sample ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SR = 22050
HOP = 512
FPS = SR / HOP
MIN_BPM, MAX_BPM = 40.0, 240.0
STATES_PER_OCTAVE = 48  # 1.5 % per tempo state
DECIMATE = 8  # tempo curve resolution: 8 frames = 0.19 s
TEMPOGRAM_WIN = 256  # frames: a 5.9 s window, short enough for rubato, long enough for 40 BPM
CURVE_OCTAVES = 0.42  # how far a tempo curve may wander from its level (x0.75 .. x1.34)
STEADY_SPREAD = 0.05  # a curve whose 5-95 % range is within 5 % is one tempo


@dataclass(frozen=True)
class TrackerParams:
    """The tracker's tuned constants (fitted by cross-validation in scripts/eval_beats.py)."""

    # Tempo prior: log-normal around the preferred tempo of listeners (~120 BPM, Moelants 2002),
    # wide enough to break ties between pulse levels rather than overrule the signal.
    prior_bpm: float = 120.0
    prior_octaves: float = 1.5
    # Evidence: the low band's (kick, bass) share of the onset contrast that scores a grid.
    low_weight: float = 0.5
    # librosa's dynamic programme: how strongly beats keep to the tempo curve.
    tightness: float = 100.0
    # How late tracked beats sit behind heard ones before the per-track measurement.
    latency_s: float = 0.024

    def prior(self, bpm: float) -> float:
        return float(np.exp(-0.5 * (np.log2(bpm / self.prior_bpm) / self.prior_octaves) ** 2))


PARAMS = TrackerParams()


@dataclass(frozen=True)
class Tracked:
    """The winning grid: beat frames, the tempo curve it was tracked on, and how sure the choice was."""

    frames: np.ndarray
    bpm: float  # the tempo tracked at: librosa's estimate near the level, or the curve's median
    curve: np.ndarray | None  # per-frame BPM where the tempo moves, None where it is one tempo
    octave_margin: float  # 1 - (best other pulse level's score / this one's): 0 = a coin toss
    runner_up_bpm: float | None
    clarity: float  # how clearly the music pulses at that tempo, 0..1


def states() -> np.ndarray:
    n = int(np.floor(np.log2(MAX_BPM / MIN_BPM) * STATES_PER_OCTAVE)) + 1
    return MIN_BPM * 2.0 ** (np.arange(n) / STATES_PER_OCTAVE)


def tempogram(env: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The local autocorrelation tempogram on the log-tempo states, one column per ``DECIMATE``
    frames: each column scaled to its maximum (so loud and quiet passages weigh alike), and
    scaled to the window's energy (lag 0), which is how clearly the music pulses at each tempo."""
    import librosa

    ac = librosa.feature.tempogram(
        onset_envelope=env, sr=SR, hop_length=HOP, win_length=TEMPOGRAM_WIN, norm=None
    )[:, ::DECIMATE]
    # A windowed autocorrelation shrinks with the lag (less of the window overlaps itself), which
    # would pull every curve toward faster tempi: divide that overlap out.
    window = np.hanning(TEMPOGRAM_WIN)
    overlap = np.correlate(window, window, mode="full")[TEMPOGRAM_WIN - 1 :]
    ac = ac / np.maximum(overlap / overlap[0], 0.05)[:, None]
    lags = FPS * 60.0 / states()  # fractional lag of each state, interpolated between integer lags
    lo = np.floor(lags).astype(int)
    frac = (lags - lo)[:, None]
    tg = ac[lo] * (1.0 - frac) + ac[np.minimum(lo + 1, ac.shape[0] - 1)] * frac
    tg = np.maximum(tg, 0.0)
    return tg / (tg.max(axis=0, keepdims=True) + 1e-9), tg / (ac[0] + 1e-9)


def candidates(tg: np.ndarray, most: int = 4) -> list[float]:
    """Pulse levels worth tracking: the strongest peaks of the mean tempogram, plus the double,
    half, triple and third of the strongest (dropping near-duplicates)."""
    import scipy.signal

    bpms = states()
    mean = tg.mean(axis=1)
    peaks, _ = scipy.signal.find_peaks(mean)
    if len(peaks) == 0:
        peaks = np.array([int(np.argmax(mean))])
    top = peaks[np.argsort(mean[peaks])[::-1][:most]]
    found = [float(bpms[i]) for i in top]
    found += [found[0] * f for f in (2.0, 0.5, 3.0, 1.0 / 3.0)]
    out: list[float] = []
    for bpm in found:
        if MIN_BPM <= bpm <= MAX_BPM and all(abs(np.log2(bpm / o)) > 0.05 for o in out):
            out.append(bpm)
    return out


def tempo_curve(tg: np.ndarray, centre_bpm: float, n_frames: int) -> np.ndarray:
    """Per-frame BPM: the Viterbi path through the tempogram within ``CURVE_OCTAVES`` of the centre.

    Each step (0.19 s) the tempo may move about a state (1.5 %): a ritardando or rubato glides;
    a jump (a medley) costs as much as ~12 steps of weaker evidence, so it happens only where
    the music really changes tempo."""
    bpms = states()
    keep = np.flatnonzero(np.abs(np.log2(bpms / centre_bpm)) <= CURVE_OCTAVES)
    if len(keep) < 3 or tg.shape[1] < 2:
        return np.full(n_frames, centre_bpm)
    path = _viterbi(np.log(tg[keep] + 0.02))
    coarse = bpms[keep][path]
    at = np.arange(tg.shape[1]) * DECIMATE
    return np.interp(np.arange(n_frames), at, coarse)


JUMP_COST = 6.0  # log-likelihood price of a tempo jump of more than a state per step


def _viterbi(log_obs: np.ndarray) -> np.ndarray:
    """The best state path when each step may move one state for free-ish (a Gaussian step cost)
    and further at ``JUMP_COST``. The same costs at every state: a row-normalised transition matrix
    would make the edge states sticky (fewer neighbours, each more likely) and pull the path there."""
    k, t = log_obs.shape
    d = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]).astype(float)
    cost = np.minimum(0.5 * d**2, JUMP_COST + 0.05 * d)  # cost[i, j]: from state i to state j
    score = log_obs[:, 0].copy()
    back = np.zeros((t, k), dtype=np.int32)
    for step in range(1, t):
        cand = score[:, None] - cost
        back[step] = np.argmax(cand, axis=0)
        score = cand[back[step], np.arange(k)] + log_obs[:, step]
    path = np.empty(t, dtype=int)
    path[-1] = int(np.argmax(score))
    for step in range(t - 1, 0, -1):
        path[step - 1] = back[step, path[step]]
    return path


def is_steady(curve: np.ndarray) -> bool:
    lo, hi = np.percentile(curve, [5, 95])
    return bool(np.log2(hi / lo) <= STEADY_SPREAD)


def evidence(bands: np.ndarray, env: np.ndarray, params: TrackerParams) -> np.ndarray:
    """The onset curve grids are scored on: all bands, with the low band's share raised."""
    low = bands[0] / (float(np.mean(bands[0])) + 1e-9)
    full = env / (float(np.mean(env)) + 1e-9)
    return (1.0 - params.low_weight) * full + params.low_weight * low


def _beat_track(env: np.ndarray, bpm: float | np.ndarray, tightness: float) -> np.ndarray:
    import librosa

    _, frames = librosa.beat.beat_track(
        onset_envelope=env, sr=SR, hop_length=HOP, bpm=bpm, tightness=tightness, trim=False
    )
    return np.asarray(frames, dtype=int)


PHASE_GAIN = 1.3  # how much more beat evidence a shifted grid needs to replace the tracked one


def _on_the_beat(bands: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The tracked grid, or the same grid shifted by a quarter, half or three quarters of a beat
    where the kick and snare (low and mid bands) are clearly stronger there. The dynamic programme
    follows the busiest onsets, and in funk or reggae those are the syncopations and off-beats;
    the hi-hats (high band) mark subdivisions, so they take no part in this choice."""
    if len(frames) < 8:
        return frames
    beat = bands[0] / (bands[0].mean() + 1e-9) + bands[1] / (bands[1].mean() + 1e-9)
    gaps = np.diff(frames)
    best, best_score = frames, _mean_peak(beat, frames)
    for frac in (0.25, 0.5, 0.75):
        shifted = frames[:-1] + np.round(frac * gaps).astype(int)
        score = _mean_peak(beat, shifted)
        if score > best_score * PHASE_GAIN:
            best, best_score = shifted, score
    return best


def _mean_peak(curve: np.ndarray, frames: np.ndarray) -> float:
    frames = np.clip(frames, 1, len(curve) - 2)
    return float(np.mean(np.maximum(np.maximum(curve[frames - 1], curve[frames]), curve[frames + 1])))


def track(
    bands: np.ndarray, env: np.ndarray, params: TrackerParams = PARAMS, *, accents: np.ndarray | None = None
) -> Tracked:
    """Track every candidate pulse level and keep the grid the evidence and the prior like best.

    ``bands`` (log-scale onset strength per band) find the periodicities and place the beats;
    ``accents`` (the same on a loudness scale) say which grid, and which phase of it, is the beat:
    a ghost note rising from silence is as loud as a backbeat on a log scale, not on this one."""
    import librosa

    n = len(env)
    tg, clarity = tempogram(env)
    # librosa's own tempogram (its default 8 s window), computed once for every steady candidate's
    # tempo estimate instead of once per call.
    tg_steady = librosa.feature.tempogram(
        onset_envelope=env,
        sr=SR,
        hop_length=HOP,
        win_length=int(librosa.time_to_frames(8.0, sr=SR, hop_length=HOP)),
    )
    accents = bands if accents is None else accents
    ev = evidence(accents, accents.sum(axis=0), params)
    scored: list[tuple[float, float, np.ndarray, np.ndarray | None]] = []
    for level in candidates(tg):
        curve = tempo_curve(tg, level, n)
        if is_steady(curve) or n < 2 * TEMPOGRAM_WIN:
            bpm = float(
                librosa.feature.tempo(tg=tg_steady, sr=SR, hop_length=HOP, start_bpm=float(np.median(curve)),
                                      std_bpm=0.15)[0]
            )  # fmt: skip
            frames, used = _beat_track(env, bpm, params.tightness), None
        else:
            bpm, used = float(np.median(curve)), curve
            frames = _beat_track(env, curve, params.tightness)
        frames = _on_the_beat(accents, frames)
        hit = _mean_peak(ev, frames) / (float(np.mean(ev)) + 1e-9)
        scored.append((hit * params.prior(bpm), bpm, frames, used))
    scored.sort(key=lambda s: -s[0])
    score, bpm, frames, curve = scored[0]
    others = [s for s in scored[1:] if abs(np.log2(s[1] / bpm)) > 0.2]
    margin = 1.0 - max(0.0, others[0][0]) / score if others and score > 0 else float(score > 0)
    return Tracked(
        frames=frames, bpm=bpm, curve=curve, octave_margin=float(margin),
        runner_up_bpm=others[0][1] if others else None, clarity=_clarity(clarity, curve, bpm),
    )  # fmt: skip


def _clarity(clarity: np.ndarray, curve: np.ndarray | None, bpm: float) -> float:
    """How clearly the music pulses at the tracked tempo: the median over time of the normalised
    autocorrelation at that tempo (near 1 for a drum loop, near 0 where nothing repeats)."""
    if clarity.shape[1] == 0:
        return 0.0
    at = np.arange(clarity.shape[1]) * DECIMATE
    bpms = curve[np.minimum(at, len(curve) - 1)] if curve is not None else np.full(len(at), bpm)
    idx = np.clip(np.round(np.log2(bpms / MIN_BPM) * STATES_PER_OCTAVE).astype(int), 0, clarity.shape[0] - 1)
    return float(np.median(clarity[idx, np.arange(len(at))]))
