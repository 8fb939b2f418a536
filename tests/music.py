"""Generated music with exact beat times: full mixes (drums, bass, pads, keys) in the metres, feels
and tempo curves a beat tracker meets in real recordings, for `scripts/make_beat_set.py`, the
evaluation in `scripts/eval_beats.py` and the beat tests.

Every piece is a score in beats (an instrument, a position in beats from the start, a pitch) laid
onto a list of true beat times, so a ritardando or rubato is only another list of times, and the
ground truth is exact by construction. Live timing is an independent random offset per note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050
# i - vi - IV - V in A, as MIDI roots, with the chord's triad above each.
PROGRESSION = ((45, (57, 61, 64)), (42, (54, 57, 61)), (38, (50, 54, 57)), (40, (52, 56, 59)))


def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def beats_from_curve(bpm_at: Callable[[float], float], duration_s: float, start_s: float = 0.0) -> np.ndarray:
    """Beat times whose tempo at time t is ``bpm_at(t)`` (integrated beat by beat)."""
    times, t = [], start_s
    while t < duration_s - 0.05:
        times.append(t)
        t += 60.0 / bpm_at(t)
    return np.asarray(times)


@dataclass
class Piece:
    """One generated recording: its true beats, metre and notes (positions in beats)."""

    name: str
    beats_s: np.ndarray
    beats_per_bar: int
    duration_s: float
    steady: bool
    notes: list[tuple[str, float, float, float]] = field(
        default_factory=list
    )  # (instrument, beat, pitch, gain)
    jitter_ms: float = 0.0
    seed: int = 0

    def add(self, instrument: str, beat: float, pitch: float = 0.0, gain: float = 1.0) -> None:
        self.notes.append((instrument, beat, pitch, gain))

    @property
    def tempo_bpm(self) -> float:
        return 60.0 / float(np.median(np.diff(self.beats_s)))

    def time_of(self, beat: float | np.ndarray) -> np.ndarray:
        """Time of a (fractional) beat position, extrapolated at the end tempo past the last beat."""
        idx = np.arange(len(self.beats_s), dtype=float)
        t = np.interp(beat, idx, self.beats_s)
        last = self.beats_s[-1] - self.beats_s[-2]
        return np.where(np.asarray(beat) > idx[-1], self.beats_s[-1] + (np.asarray(beat) - idx[-1]) * last, t)

    def local_bpm(self, times: np.ndarray) -> np.ndarray:
        """The true tempo at the given times (from the interval between the beats around them)."""
        mids = 0.5 * (self.beats_s[1:] + self.beats_s[:-1])
        return np.interp(times, mids, 60.0 / np.diff(self.beats_s))

    def annotation(self) -> str:
        """The `.beats` text: ``time<TAB>position in bar`` (1 = downbeat), like the dev set."""
        return "".join(f"{t:.6f}\t{i % self.beats_per_bar + 1}\n" for i, t in enumerate(self.beats_s))


# --- the instruments -------------------------------------------------------------------------------


def _env(n: int, attack_s: float, decay_s: float) -> np.ndarray:
    t = np.arange(n) / SR
    return np.minimum(1.0, t / max(attack_s, 1e-4)) * np.exp(-t / decay_s)


def _tone(
    freqs: list[float], length_s: float, attack_s: float, decay_s: float, harmonics: int, rng
) -> np.ndarray:
    n = int(length_s * SR)
    t = np.arange(n) / SR
    out = np.zeros(n)
    for f in freqs:
        f = f * (1.0 + rng.normal(0, 0.002))  # a little detune: real instruments are not one sine
        for h in range(1, harmonics + 1):
            if f * h < SR / 2.2:
                out += np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6.28)) / h**1.3
    return out * _env(n, attack_s, decay_s)


def _noise(length_s: float, decay_s: float, rng, highpass: int = 0) -> np.ndarray:
    sig = rng.standard_normal(int(length_s * SR)) * _env(int(length_s * SR), 0.001, decay_s)
    for _ in range(highpass):
        sig = np.diff(sig, prepend=0.0)
    return sig


def _sound(instrument: str, pitch: float, rng) -> np.ndarray:
    if instrument == "kick":
        t = np.arange(int(0.25 * SR)) / SR
        return 0.9 * np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-t * 30)) / SR) * np.exp(-t / 0.09)
    if instrument == "snare":
        body = _tone([185.0], 0.2, 0.001, 0.04, 2, rng) * 0.5
        return body + _noise(0.2, 0.06, rng, highpass=1) * 0.45
    if instrument == "hat":
        return _noise(0.08, 0.012, rng, highpass=2) * 0.12
    if instrument == "openhat":
        return _noise(0.3, 0.09, rng, highpass=2) * 0.1
    if instrument == "ride":
        return _tone([510.0, 737.0, 1043.0, 1380.0], 0.6, 0.001, 0.25, 1, rng) * 0.06
    if instrument == "shaker":
        return _noise(0.1, 0.03, rng, highpass=1) * _env(int(0.1 * SR), 0.015, 1.0) * 0.08
    if instrument == "bass":
        return _tone([midi_hz(pitch)], 0.45, 0.005, 0.25, 4, rng) * 0.45
    if instrument == "keys":  # a piano-like chord: quick attack, long decay
        return _tone([midi_hz(p) for p in _triad(pitch)], 1.2, 0.003, 0.5, 5, rng) * 0.12
    if instrument == "stab":  # a short off-beat chord (reggae skank, funk guitar)
        return _tone([midi_hz(p + 12) for p in _triad(pitch)], 0.15, 0.002, 0.04, 6, rng) * 0.14
    if instrument == "pad":  # a sustained chord with a slow swell: no sharp onset
        return _tone([midi_hz(p) for p in _triad(pitch)], 2.5, 0.35, 1.2, 3, rng) * 0.07
    if instrument == "pluck":  # a single note of a guitar or harp
        return _tone([midi_hz(pitch)], 0.8, 0.002, 0.25, 7, rng) * 0.2
    raise ValueError(instrument)


def _triad(root: float) -> tuple[float, ...]:
    for r, chord in PROGRESSION:
        if r == root:
            return chord
    return (root + 12, root + 16, root + 19)


def render(piece: Piece) -> np.ndarray:
    """The piece as mono float32 samples at ``SR``, peak-normalised to 0.8."""
    rng = np.random.default_rng(piece.seed)
    n = int(piece.duration_s * SR)
    y = np.zeros(n + SR)
    sounds: dict[tuple[str, float], list[np.ndarray]] = {}
    for instrument, beat, pitch, gain in piece.notes:
        key = (instrument, pitch)
        variants = sounds.setdefault(key, [])
        if len(variants) < 4:  # a few takes of each sound, so repeats are not sample-identical
            variants.append(_sound(instrument, pitch, rng))
        sig = variants[int(rng.integers(len(variants)))]
        at = float(piece.time_of(beat)) + rng.normal(0.0, piece.jitter_ms / 1000.0)
        s = int(round(at * SR))
        if 0 <= s < n:
            y[s : s + len(sig)] += sig[: len(y) - s] * gain
    y = y[:n]
    return (y / (np.max(np.abs(y)) + 1e-9) * 0.8).astype(np.float32)


def write(piece: Piece, folder: Path) -> tuple[Path, Path]:
    """``NAME.wav`` and ``NAME.beats`` in folder."""
    folder.mkdir(parents=True, exist_ok=True)
    wav, ann = folder / f"{piece.name}.wav", folder / f"{piece.name}.beats"
    sf.write(str(wav), render(piece), SR)
    ann.write_text(piece.annotation())
    return wav, ann


# --- the arrangements ------------------------------------------------------------------------------


def _band(
    p: Piece, *, bars: range | None = None, swing: float = 0.5, feel: str = "rock", keys: bool = False
) -> None:
    """Drums, bass and a pad in 4/4 over the given bars (all of them by default)."""
    per = p.beats_per_bar
    bars = bars if bars is not None else range(len(p.beats_s) // per)
    for bar in bars:
        b0 = bar * per
        root, _ = PROGRESSION[bar % len(PROGRESSION)]
        p.add("pad", b0, root, 1.0)
        for beat in range(per):
            b = b0 + beat
            if feel == "rock":
                if beat in (0, 2):
                    p.add("kick", b)
                if beat in (1, 3):
                    p.add("snare", b)
                p.add("bass", b, root, 1.0 if beat == 0 else 0.7)
            elif feel == "halftime":  # kick on 1, snare on 3: the drums feel half as fast
                if beat == 0:
                    p.add("kick", b)
                if beat == 2:
                    p.add("snare", b)
                if beat in (0, 2):
                    p.add("bass", b, root)
            elif feel == "funk":  # syncopated kick and bass, backbeat snare with ghost notes
                if beat == 1 or beat == 3:
                    p.add("snare", b)
                p.add("snare", b + 0.75, gain=0.25)
            p.add("hat", b, gain=0.8)
            p.add("hat", b + swing, gain=0.5)
            if keys:
                p.add("keys", b, root, 0.6 if beat else 1.0)
        if feel == "funk":
            for off, pitch in ((0, 0), (0.75, 0), (1.5, 12), (2.0, 0), (2.75, 7), (3.5, 0)):
                p.add("bass", b0 + off, root + pitch)
            for off in (0, 1.5, 2.0, 2.75):
                p.add("kick", b0 + off)


def steady_pop(bpm: float = 120.0, seconds: float = 32.0, seed: int = 1) -> Piece:
    p = Piece(f"steady_pop_{bpm:g}", np.arange(0.5, seconds - 0.05, 60.0 / bpm), 4, seconds, True, seed=seed)
    _band(p)
    return p


def swing_shuffle(seed: int = 2) -> Piece:
    p = Piece("swing_shuffle_96", np.arange(0.3, 32.0, 60.0 / 96.0), 4, 32.0, True, seed=seed)
    for bar in range(len(p.beats_s) // 4):
        root, _ = PROGRESSION[bar % 4]
        for beat in range(4):
            b = bar * 4 + beat
            p.add("ride", b)
            p.add("ride", b + 2 / 3, gain=0.6)  # triplet swing
            p.add("bass", b, root + (0, 4, 7, 9)[beat])  # a walking bass
            if beat in (1, 3):
                p.add("hat", b, gain=1.2)  # the hi-hat foot on 2 and 4
                p.add("stab", b + 2 / 3, root, 0.5)
        p.add("kick", bar * 4, gain=0.6)
        p.add("pad", bar * 4, root, 0.8)
    return p


def six_eight(seed: int = 3, bpm: float = 76.0) -> Piece:
    """6/8 at 76 dotted quarters per minute: the beat is the dotted quarter, two per bar, eighths
    in threes on the hi-hat and an arpeggio."""
    beats = np.arange(0.2, 34.0, 60.0 / bpm)
    p = Piece(f"six_eight_{bpm:g}", beats, 2, 34.0, True, seed=seed)
    for bar in range(len(beats) // 2):
        root, chord = PROGRESSION[bar % 4]
        p.add("kick", bar * 2)
        p.add("snare", bar * 2 + 1, gain=0.8)
        p.add("bass", bar * 2, root)
        p.add("bass", bar * 2 + 1, root + 7, 0.7)
        p.add("pad", bar * 2, root, 0.8)
        for e in range(6):
            p.add("hat", bar * 2 + e / 3, gain=0.7 if e % 3 else 1.0)
            p.add("pluck", bar * 2 + e / 3, chord[e % 3] + 12, 0.5)
    return p


def seven_eight(seed: int = 4, bpm: float = 180.0) -> Piece:
    """7/8 grouped 2+2+3, counted in eighths at 180 per minute: the annotated beat is the eighth."""
    beats = np.arange(0.4, 32.0, 60.0 / bpm)
    p = Piece(f"seven_eight_{bpm:g}", beats, 7, 32.0, True, seed=seed)
    for bar in range(len(beats) // 7):
        root, _ = PROGRESSION[bar % 4]
        b0 = bar * 7
        for e in range(7):
            p.add("hat", b0 + e, gain=0.9)
        for g in (0, 2, 4):
            p.add("kick" if g == 0 else "snare", b0 + g, gain=1.0 if g == 0 else 0.7)
            p.add("bass", b0 + g, root + (0, 7, 5)[g // 2])
        p.add("keys", b0, root, 0.8)
    return p


def funk(seed: int = 5, bpm: float = 104.0) -> Piece:
    p = Piece(f"syncopated_funk_{bpm:g}", np.arange(0.25, 32.0, 60.0 / bpm), 4, 32.0, True, seed=seed)
    _band(p, feel="funk")
    for bar in range(len(p.beats_s) // 4):
        root, _ = PROGRESSION[bar % 4]
        for off in (0.5, 1.25, 2.5, 3.25):
            p.add("stab", bar * 4 + off, root, 0.7)
    return p


def offbeat_reggae(seed: int = 6, bpm: float = 80.0) -> Piece:
    """A one-drop at 80 BPM: the kick and snare only on beat 3, chord stabs on every off-beat."""
    p = Piece(f"offbeat_reggae_{bpm:g}", np.arange(0.5, 32.0, 60.0 / bpm), 4, 32.0, True, seed=seed)
    for bar in range(len(p.beats_s) // 4):
        root, _ = PROGRESSION[bar % 4]
        b0 = bar * 4
        p.add("kick", b0 + 2)
        p.add("snare", b0 + 2, gain=0.6)
        for beat in range(4):
            p.add("stab", b0 + beat + 0.5, root)
            p.add("hat", b0 + beat, gain=0.5)
            p.add("hat", b0 + beat + 0.5, gain=0.35)
        for off, pitch in ((0, 0), (1.5, 7), (2.0, 0), (3.0, 12)):
            p.add("bass", b0 + off, root + pitch)
        p.add("pad", b0, root, 0.6)
    return p


def half_time(seed: int = 7, bpm: float = 140.0) -> Piece:
    """140 BPM; bars 9-16 drop to a half-time feel (the tempo, and the annotated beat, do not). At
    another tempo the middle third of the bars is half-time."""
    p = Piece(f"half_time_section_{bpm:g}", np.arange(0.3, 36.0, 60.0 / bpm), 4, 36.0, True, seed=seed)
    n_bars = len(p.beats_s) // 4
    start, end = (8, 16) if bpm == 140.0 else (n_bars // 3, 2 * (n_bars // 3))
    _band(p, bars=range(0, start))
    _band(p, bars=range(start, end), feel="halftime")
    _band(p, bars=range(end, n_bars))
    return p


def quiet_intro(seed: int = 8) -> Piece:
    """110 BPM: 8 bars of soft keys and shaker (28 dB down), then the band."""
    p = Piece("quiet_intro_110", np.arange(0.2, 36.0, 60.0 / 110.0), 4, 36.0, True, seed=seed)
    for bar in range(8):
        root, _ = PROGRESSION[bar % 4]
        for beat in range(4):
            p.add("keys", bar * 4 + beat, root, 0.04 if beat else 0.06)
            p.add("shaker", bar * 4 + beat + 0.5, gain=0.04)
    _band(p, bars=range(8, len(p.beats_s) // 4), keys=True)
    return p


def live_drums(seed: int = 9) -> Piece:
    """A drummer at about 100 BPM: the tempo wanders +-1.5 % and every note is 12 ms off on average."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 0.2, 64))
    walk = 100.0 * (1.0 + 0.015 * walk / max(1.0, np.max(np.abs(walk))))
    beats = beats_from_curve(lambda t: float(np.interp(t, np.linspace(0, 34, 64), walk)), 34.0, 0.3)
    p = Piece("live_drums_100", beats, 4, 34.0, True, jitter_ms=12.0, seed=seed)
    _band(p, keys=True)
    return p


def ballad(seed: int = 10, bpm: float = 84.0) -> Piece:
    """No drums: piano chords on every beat, bass on 1 and 3, a pad, at 84 BPM."""
    p = Piece(f"ballad_keys_{bpm:g}", np.arange(0.5, 36.0, 60.0 / bpm), 4, 36.0, True, seed=seed)
    _keys(p, off_gain=0.6, pluck_gain=0.35, pluck_shift=1, fifth_gain=0.7, pad_gain=0.7)
    return p


def _keys(p: Piece, *, off_gain: float, pluck_gain: float, pluck_shift: int, fifth_gain: float | None,
          pad_gain: float) -> None:  # fmt: skip
    """Drumless 4/4: a piano chord on every beat (accented on 1), an arpeggio note on each off-beat,
    the bass on 1 (and on 3, a fifth up, with ``fifth_gain``) and a pad."""
    for bar in range(len(p.beats_s) // 4):
        root, chord = PROGRESSION[bar % 4]
        for beat in range(4):
            p.add("keys", bar * 4 + beat, root, 1.0 if beat == 0 else off_gain)
            p.add("pluck", bar * 4 + beat + 0.5, chord[(beat + pluck_shift) % 3] + 12, pluck_gain)
        p.add("bass", bar * 4, root)
        if fifth_gain is not None:
            p.add("bass", bar * 4 + 2, root + 7, fifth_gain)
        p.add("pad", bar * 4, root, pad_gain)


def _curved(
    name: str, curve: Callable[[float], float], seconds: float, seed: int, drums: bool = True
) -> Piece:
    p = Piece(name, beats_from_curve(curve, seconds, 0.3), 4, seconds, False, jitter_ms=5.0, seed=seed)
    if drums:
        _band(p, keys=True)
    else:
        _keys(p, off_gain=0.55, pluck_gain=0.3, pluck_shift=0, fifth_gain=None, pad_gain=0.6)
    return p


def ritardando(seed: int = 11) -> Piece:
    return _curved("ritardando_128_to_88", lambda t: 128.0 - 40.0 * t / 40.0, 40.0, seed)


def accelerando(seed: int = 12) -> Piece:
    return _curved("accelerando_84_to_132", lambda t: 84.0 + 48.0 * t / 40.0, 40.0, seed)


def rubato(seed: int = 13) -> Piece:
    """Expressive piano: the tempo breathes +-12 % around 92 BPM every 9 s; no drums."""
    return _curved(
        "rubato_piano_92", lambda t: 92.0 * (1.0 + 0.12 * np.sin(2 * np.pi * t / 9.0)), 40.0, seed, False
    )


def tempo_step(seed: int = 14) -> Piece:
    """A medley: 100 BPM for 18 s, then 126 BPM."""
    return _curved("tempo_step_100_to_126", lambda t: 100.0 if t < 18.0 else 126.0, 40.0, seed)


def waltz(bpm: float, seed: int = 15) -> Piece:
    """3/4, oom-pah-pah: bass and a soft kick on 1, chord stabs and the hi-hat on 2 and 3, a pad.
    Only among the held-out variants below."""
    beats = np.arange(0.3, 32.0, 60.0 / bpm)
    p = Piece(f"waltz_{bpm:g}", beats, 3, 32.0, True, seed=seed)
    for bar in range(len(beats) // 3):
        root, _ = PROGRESSION[bar % 4]
        p.add("bass", bar * 3, root)
        p.add("kick", bar * 3, gain=0.7)
        p.add("pad", bar * 3, root, 0.6)
        for beat in (1, 2):
            p.add("stab", bar * 3 + beat, root, 0.6)
            p.add("hat", bar * 3 + beat, gain=0.5)
    return p


def four_on_the_floor(bpm: float, seed: int = 16) -> Piece:
    """House: a kick on every beat, a clap-like snare on 2 and 4, the bass and an open hi-hat on
    every off-beat, a pad. Only among the held-out variants below."""
    p = Piece(f"four_on_the_floor_{bpm:g}", np.arange(0.2, 32.0, 60.0 / bpm), 4, 32.0, True, seed=seed)
    for bar in range(len(p.beats_s) // 4):
        root, _ = PROGRESSION[bar % 4]
        for beat in range(4):
            b = bar * 4 + beat
            p.add("kick", b)
            p.add("bass", b + 0.5, root)
            p.add("openhat", b + 0.5, gain=0.8)
            if beat in (1, 3):
                p.add("snare", b, gain=0.6)
        p.add("pad", bar * 4, root, 0.5)
    return p


def tresillo(bpm: float, seed: int = 17) -> Piece:
    """Latin pop: bass and a soft kick in 3+3+2 eighths, a shaker on the beats, chord stabs on the
    off-beats, a light snare on 2 and 4. Only among the held-out variants below."""
    p = Piece(f"tresillo_{bpm:g}", np.arange(0.3, 32.0, 60.0 / bpm), 4, 32.0, True, seed=seed)
    for bar in range(len(p.beats_s) // 4):
        root, _ = PROGRESSION[bar % 4]
        for off in (0.0, 1.5, 3.0):
            p.add("bass", bar * 4 + off, root)
            p.add("kick", bar * 4 + off, gain=0.6)
        for beat in range(4):
            p.add("shaker", bar * 4 + beat, gain=0.6)
            p.add("stab", bar * 4 + beat + 0.5, root, 0.4)
        p.add("snare", bar * 4 + 1, gain=0.5)
        p.add("snare", bar * 4 + 3, gain=0.5)
    return p


def anticipated_bass(bpm: float, seed: int = 18) -> Piece:
    """Rock drums with eighths on the hi-hat; the bass anticipates the bar by an eighth and plays on
    the "and" of 2, 3 and 4. Only among the held-out variants below."""
    p = Piece(f"anticipated_bass_{bpm:g}", np.arange(0.3, 32.0, 60.0 / bpm), 4, 32.0, True, seed=seed)
    for bar in range(len(p.beats_s) // 4):
        root, _ = PROGRESSION[bar % 4]
        b0 = bar * 4
        for beat, drum in ((0, "kick"), (1, "snare"), (2, "kick"), (3, "snare")):
            p.add(drum, b0 + beat)
        for off in (-0.5, 1.5, 2.5, 3.5):
            p.add("bass", max(0.0, b0 + off), root)
        for eighth in range(8):
            p.add("hat", b0 + eighth / 2, gain=0.5)
    return p


PIECES: tuple[Callable[[], Piece], ...] = (
    steady_pop, swing_shuffle, six_eight, seven_eight, funk, offbeat_reggae, half_time, quiet_intro,
    live_drums, ballad, ritardando, accelerando, rubato, tempo_step,
)  # fmt: skip


def all_pieces() -> list[Piece]:
    return [make() for make in PIECES]


# Held out: the same arrangements at other tempi, a waltz, house, a tresillo and an anticipated bass.
# Written after the pulse-level choice was designed on the pieces above and never used to set a
# constant (scripts/eval_beats.py --variants; docs/benchmarks.md says which rule was checked on which).
VARIANTS: tuple[tuple[Callable[..., Piece], tuple[float, ...]], ...] = (
    (steady_pop, (70.0, 90.0, 100.0, 140.0, 160.0)), (half_time, (120.0, 150.0, 170.0)),
    (seven_eight, (150.0, 200.0, 220.0)), (waltz, (90.0, 120.0, 160.0)), (funk, (90.0, 115.0)),
    (offbeat_reggae, (70.0, 90.0)), (ballad, (66.0, 100.0)), (six_eight, (60.0, 90.0)),
    (four_on_the_floor, (124.0,)), (tresillo, (100.0, 110.0)), (anticipated_bass, (90.0, 100.0)),
)  # fmt: skip


def variants() -> list[Piece]:
    return [make(bpm=bpm) for make, tempi in VARIANTS for bpm in tempi]
