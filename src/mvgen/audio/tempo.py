"""Tempo and beat tracking: which pulse level, how the tempo moves, where the beats fall.

1. A local tempogram (autocorrelation of the onset envelope over ~6 s windows) on a log-tempo
   axis gives, over the whole track, the candidate pulse levels (its peaks, and their doubles,
   halves and thirds: 6/8 and 7/8 relate levels by three).
2. For each candidate, a Viterbi path through the tempogram near that level is the tempo curve: it
   drifts with a ritardando, breathes with rubato and jumps (at a price) at a medley's change.
   Where that curve is flat the track is tracked at one tempo, exactly as a steady track always was.
3. librosa's dynamic programme places the beats on that curve, and the phase where the kick and
   bass are strongest is the beat (not the syncopations, not a reggae skank on the off-beat).
4. The pulse level: a grid at half the tempo of a grid whose accents repeat every 3, 5 or 7 beats
   (3/4, 7/8 in eighths) is no beat, nor is a grid whose accents repeat every 8 beats but not every
   4 (it counts eighths). Each other grid is scored locally, through a window sliding over the
   track, by how much stronger the onsets are on its beats than on average there, times a tempo
   prior; the level that wins the most of the track is the beat, so a half-time bridge does not
   outvote the rest of the song.

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
    # Choosing the pulse level: how long a stretch of music each local comparison hears, how close
    # two levels' shares of the track are a tie, and how clearly a grid's accents must repeat (every
    # 3, 5 or 7 beats, or every 8 but not 4) to rule a grid out.
    local_window_s: float = 6.0
    share_tie: float = 0.1
    bar_repeat: float = 0.5

    def prior(self, bpm: float) -> float:
        return float(np.exp(-0.5 * (np.log2(bpm / self.prior_bpm) / self.prior_octaves) ** 2))


PARAMS = TrackerParams()


@dataclass(frozen=True)
class Tracked:
    """The winning grid: beat frames, the tempo curve it was tracked on, and how sure the choice was."""

    frames: np.ndarray
    bpm: float  # the tempo tracked at: librosa's estimate near the level, or the curve's median
    curve: np.ndarray | None  # per-frame BPM where the tempo moves, None where it is one tempo
    octave_margin: float  # 1 - (the next pulse level's whole-track score / this one's): 0 = a coin toss
    share_margin: float  # 1 - (the share of the track the next level wins / this one's)
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
    where the kick and the bass (the low band) are clearly stronger there. The dynamic programme
    follows the busiest onsets, and in funk or reggae those are the syncopations and off-beats.
    The mid band takes no part: a snare's backbeat is on a beat anyway, but a reggae skank or a
    funk guitar's chop is a chord off the beat, in the same range. Nor do the hi-hats (high band),
    which mark subdivisions."""
    if len(frames) < 8:
        return frames
    beat = bands[0]
    gaps = np.diff(frames)
    best, best_score = frames, _mean_peak(beat, frames)
    for frac in (0.25, 0.5, 0.75):
        shifted = frames[:-1] + np.round(frac * gaps).astype(int)
        score = _mean_peak(beat, shifted)
        if score > best_score * PHASE_GAIN:
            best, best_score = shifted, score
    return best


def _mean_peak(curve: np.ndarray, frames: np.ndarray) -> float:
    return float(np.mean(_peaks(curve, frames)))


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
    grids: list[tuple[float, np.ndarray, np.ndarray | None]] = []
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
        grids.append((bpm, _on_the_beat(accents, frames), used))
    grids = _metrically_consistent(grids, ev, params)
    levels = _pulse_levels(grids, ev, params)
    best, share, score = levels[0]
    bpm, frames, curve = grids[best]
    runner_up = levels[1] if len(levels) > 1 else None
    return Tracked(
        frames=frames, bpm=bpm, curve=curve,
        octave_margin=1.0 - runner_up[2] / score if runner_up and score > 0 else 1.0,
        share_margin=1.0 - runner_up[1] / share if runner_up and share > 0 else 1.0,
        runner_up_bpm=grids[runner_up[0]][0] if runner_up else None,
        clarity=_clarity(clarity, curve, bpm),
    )  # fmt: skip


SAME_LEVEL = 0.2  # octaves: candidates this close are one pulse level (a curve's ends, a rounding)


def _pulse_levels(
    grids: list[tuple[float, np.ndarray, np.ndarray | None]], ev: np.ndarray, params: TrackerParams
) -> list[tuple[int, float, float]]:
    """Pulse levels, best first: (index of the level's best grid, share of the track it wins, that
    grid's whole-track score).

    Each grid is scored locally, through a window (6 s) sliding over the track: how much stronger
    the onsets are on its beats than on average there, times the tempo prior. Each moment goes to
    the grid that scores best there, and the level that wins the most of the track is the beat. A
    whole-track average would let a section that feels different (a half-time bridge, a breakdown)
    outvote the rest of the song; listeners keep the pulse the song set up."""
    width = max(3, min(len(ev), int(params.local_window_s * FPS)))  # np.convolve keeps the longer length
    hits = [np.maximum(_local_hit(ev, frames, width), 1e-6) * params.prior(bpm) for bpm, frames, _ in grids]
    local = np.log(np.array(hits))  # NaN where a grid has no beat in the window
    heard = np.all(np.isfinite(local), axis=0)
    if not heard.any():
        local, heard = np.zeros((len(grids), 1)), np.ones(1, dtype=bool)
    wins = np.bincount(np.argmax(local[:, heard], axis=0), minlength=len(grids)) / heard.sum()
    # Within a level (grids a few per cent apart) its best grid over the whole track stands for it;
    # ties between levels (a track shorter than the window, a drone) go to the better of those.
    whole = [_mean_peak(ev, frames) * params.prior(bpm) for bpm, frames, _ in grids]
    levels: list[tuple[int, float, float]] = []
    for i in np.argsort(whole)[::-1]:
        same = [
            k
            for k, level in enumerate(levels)
            if abs(np.log2(grids[i][0] / grids[level[0]][0])) <= SAME_LEVEL
        ]
        if same:
            j, share, score = levels[same[0]]
            levels[same[0]] = (j, share + float(wins[i]), score)
        else:
            levels.append((int(i), float(wins[i]), float(whole[i])))
    levels.sort(key=lambda level: -level[1])
    if len(levels) > 1 and levels[0][1] - levels[1][1] < params.share_tie and levels[1][2] > levels[0][2]:
        levels[:2] = levels[1::-1]  # too close to call by share: the whole track's score decides
    return levels


def _local_hit(ev: np.ndarray, frames: np.ndarray, width: int) -> np.ndarray:
    """Per frame: the mean onset strength on the grid's beats within the window around it, over the
    mean onset strength there. NaN where the window holds none of its beats."""
    n = len(ev)
    kernel = np.hanning(width + 2)[1:-1]
    on_beats, count = np.zeros(n), np.zeros(n)
    at = np.clip(frames, 0, n - 1)
    np.add.at(on_beats, at, _peaks(ev, frames))
    np.add.at(count, at, 1.0)
    beats = np.convolve(on_beats, kernel, mode="same")
    weight = np.convolve(count, kernel, mode="same")
    level = np.convolve(ev, kernel, mode="same") / kernel.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(weight > 0.5, beats / np.maximum(weight, 1e-9) / (level + 1e-9), np.nan)


def _metrically_consistent(
    grids: list[tuple[float, np.ndarray, np.ndarray | None]], ev: np.ndarray, params: TrackerParams
) -> list[tuple[float, np.ndarray, np.ndarray | None]]:
    """Drop the grids that cannot be the beat because of the bar their accents make.

    - A grid at half the tempo of a grid whose accents repeat every 3, 5 or 7 beats. A bar of 3/4,
      or of 7/8 counted in eighths, holds an odd number of that grid's beats (and a dotted-quarter
      beat of 6/8 three eighths): every other one of them falls on the accents in one bar and
      between them in the next, so it is no beat of the music, however strong its onsets are.
    - A grid whose accents repeat every 8 beats but not every 4, where a grid at half its tempo
      exists: it counts the eighths of a 4/4 bar (a reggae one-drop's skank, every eighth, under
      one drum hit a bar). A bar holds 2, 3 or 4 beats, or 6 of a compound metre."""
    bars = {i: _bar(_peaks(ev, frames), params.bar_repeat) for i, (_, frames, _) in enumerate(grids)}

    def near(bpm: float, other: float) -> bool:
        return abs(np.log2(bpm / other)) < 0.1

    odd = [grids[i][0] for i, bar in bars.items() if bar == "odd"]
    keep = [
        g
        for i, g in enumerate(grids)
        if not any(near(2.0 * g[0], fast) for fast in odd)
        and not (bars[i] == "eighths" and any(near(g[0], 2.0 * other[0]) for other in grids))
    ]
    return keep or grids


def _bar(strengths: np.ndarray, clearly: float) -> str | None:
    """What a beat-strength sequence's repetition says of its bar: "odd" where its autocorrelation
    over lags of 2 to 8 beats peaks at 3, 5 or 7 and reaches ``clearly`` there; "eighths" where it
    reaches ``clearly`` at 8 beats but not half of that at 4; None otherwise."""
    if len(strengths) < 24:
        return None
    z = (strengths - strengths.mean()) / (strengths.std() + 1e-9)
    ac = {lag: float(np.mean(z[lag:] * z[:-lag])) for lag in range(2, 9)}
    lag = max(ac, key=lambda k: ac[k])
    if lag % 2 == 1 and ac[lag] >= clearly:
        return "odd"
    if ac[8] >= clearly and ac[4] < 0.5 * clearly:
        return "eighths"
    return None


def _peaks(curve: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The curve's peak within a frame of each beat."""
    frames = np.clip(frames, 1, len(curve) - 2)
    return np.maximum(np.maximum(curve[frames - 1], curve[frames]), curve[frames + 1])


def _clarity(clarity: np.ndarray, curve: np.ndarray | None, bpm: float) -> float:
    """How clearly the music pulses at the tracked tempo: the median over time of the normalised
    autocorrelation at that tempo (near 1 for a drum loop, near 0 where nothing repeats)."""
    if clarity.shape[1] == 0:
        return 0.0
    at = np.arange(clarity.shape[1]) * DECIMATE
    bpms = curve[np.minimum(at, len(curve) - 1)] if curve is not None else np.full(len(at), bpm)
    idx = np.clip(np.round(np.log2(bpms / MIN_BPM) * STATES_PER_OCTAVE).astype(int), 0, clarity.shape[0] - 1)
    return float(np.median(clarity[idx, np.arange(len(at))]))
