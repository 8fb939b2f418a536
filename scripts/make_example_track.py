"""Synthesize the example track: an original 40-second piece at exactly 120 BPM in 4/4 (drums,
bass, chords), so the beat grid of the example is known: beat k is at k * 0.5 s, bar k at k * 2 s.

    python scripts/make_example_track.py            # writes examples/neon-drive/neon-drive.ogg

Deterministic (seeded noise). Written as Ogg Vorbis: the noise of the drums makes a lossless
file too large to commit (FLAC: 3.8 MB), and the beat grid does not depend on lossless samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100
BPM = 120.0
BARS = 20
BEAT = 60.0 / BPM
# A minor - F major - C major - G major, one chord a bar (MIDI notes).
PROGRESSION = [(57, 60, 64), (53, 57, 60), (48, 52, 55), (55, 59, 62)]
BASS_ROOTS = [45, 41, 36, 43]


def midi_hz(n: float) -> float:
    return 440.0 * 2 ** ((n - 69) / 12)


def env(n: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / SR
    a = np.minimum(1.0, t / max(attack, 1e-4))
    return a * np.exp(-t / decay)


def kick(n: int) -> np.ndarray:
    t = np.arange(n) / SR
    freq = 50 + 100 * np.exp(-t * 30)
    phase = 2 * np.pi * np.cumsum(freq) / SR
    return np.sin(phase) * env(n, 0.001, 0.18)


def snare(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    tone = np.sin(2 * np.pi * 190 * t) * env(n, 0.001, 0.06)
    noise = rng.standard_normal(n) * env(n, 0.001, 0.09)
    return 0.5 * tone + 0.6 * noise


def hat(n: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(n)
    noise = np.diff(noise, prepend=0.0)  # crude high-pass
    return noise * env(n, 0.0005, 0.025)


def saw(freq: float, n: int) -> np.ndarray:
    t = np.arange(n) / SR
    out = np.zeros(n)
    for k in range(1, 12):  # band-limited sawtooth
        out += np.sin(2 * np.pi * freq * k * t) / k
    return out


def synth(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    total = int(round(BARS * 4 * BEAT * SR))
    left = np.zeros(total)
    right = np.zeros(total)

    def add(sig: np.ndarray, start_s: float, gain: float, pan: float = 0.0) -> None:
        i = int(round(start_s * SR))
        j = min(total, i + len(sig))
        if i >= total:
            return
        left[i:j] += sig[: j - i] * gain * (1 - pan) / 2 * 2**0.5
        right[i:j] += sig[: j - i] * gain * (1 + pan) / 2 * 2**0.5

    beat_n = int(BEAT * SR)
    for bar in range(BARS):
        chorus = 8 <= bar < 16
        t_bar = bar * 4 * BEAT
        chord = PROGRESSION[bar % 4]
        pad = sum(saw(midi_hz(n), 4 * beat_n) for n in chord) * env(4 * beat_n, 0.05, 3.0)
        add(pad, t_bar, 0.045 if not chorus else 0.06, pan=-0.2)
        for beat in range(4):
            t = t_bar + beat * BEAT
            accent = 1.0 if beat == 0 else 0.8
            add(kick(beat_n), t, 0.9 * accent)
            if beat in (1, 3):
                add(snare(beat_n, rng), t, 0.45)
            for half in (0, 1):
                add(hat(beat_n // 2, rng), t + half * BEAT / 2, 0.12 if not chorus else 0.18, pan=0.3)
                root = BASS_ROOTS[bar % 4] + (12 if (half and chorus) else 0)
                add(
                    saw(midi_hz(root), beat_n // 2) * env(beat_n // 2, 0.005, 0.12), t + half * BEAT / 2, 0.12
                )
            if chorus:  # an arpeggio on sixteenths in the chorus
                for q in range(4):
                    note = chord[(beat + q) % 3] + 12
                    add(
                        saw(midi_hz(note), beat_n // 4) * env(beat_n // 4, 0.002, 0.05),
                        t + q * BEAT / 4,
                        0.05,
                        0.4,
                    )
    stereo = np.stack([left, right], axis=1)
    stereo /= np.max(np.abs(stereo)) / 0.89
    fade = int(0.02 * SR)
    stereo[-fade:] *= np.linspace(1, 0, fade)[:, None]
    return stereo.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "examples/neon-drive/neon-drive.ogg")
    )
    args = ap.parse_args()
    audio = synth()
    sf.write(args.out, audio, SR, format="OGG", subtype="VORBIS")
    print(f"wrote {args.out}: {len(audio) / SR:.2f}s, {BPM:g} BPM, {BARS} bars, stereo {SR} Hz")


if __name__ == "__main__":
    main()
