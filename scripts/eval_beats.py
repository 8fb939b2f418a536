"""Measure mvgen's beat tracker against human annotations, side by side with plain librosa.

    python scripts/eval_beats.py [--data ../shared/eval/beats] [--json results.json]

For every ``*.beats`` annotation next to an audio file in the data folder (one beat per line:
``time_s[<TAB>position_in_bar]``, 1 = downbeat), both trackers run on the same audio and the script
prints, per clip and as a mean: beat F-measure, CMLt and AMLt (mir_eval, +-70 ms window, untrimmed:
the first 5 s count too), downbeat F-measure where the annotation has bar positions, the median
offset of matched beats (estimate - annotation, ms; positive = late), and analysis seconds per minute
of audio. "plain" is ``librosa.beat.beat_track`` with default settings on ``librosa.load`` at 22.05 kHz.

The audio is read in place and never copied (the evaluation set's licences forbid redistribution).
Needs ``mir_eval`` (``pip install mir_eval``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")
WINDOW_S = 0.070


def read_annotation(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    times, positions = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        times.append(float(parts[0]))
        positions.append(int(float(parts[1])) if len(parts) > 1 else None)
    beats = np.asarray(times)
    if any(p is None for p in positions):
        return beats, None
    return beats, beats[np.asarray(positions) == 1]


def median_offset_ms(ref: np.ndarray, est: np.ndarray) -> float:
    """Median of (estimate - nearest annotation) over estimates within the +-70 ms window."""
    if len(ref) == 0 or len(est) == 0:
        return float("nan")
    idx = np.clip(np.searchsorted(ref, est), 1, len(ref) - 1)
    nearest = np.where(np.abs(est - ref[idx - 1]) < np.abs(est - ref[idx]), ref[idx - 1], ref[idx])
    diff = est - nearest
    diff = diff[np.abs(diff) <= WINDOW_S]
    return float(np.median(diff) * 1000.0) if len(diff) else float("nan")


def score(ref: np.ndarray, ref_down: np.ndarray | None, est: np.ndarray, est_down: np.ndarray | None) -> dict:
    import mir_eval

    cmlc, cmlt, amlc, amlt = mir_eval.beat.continuity(ref, est)
    out = {
        "F": mir_eval.beat.f_measure(ref, est, f_measure_threshold=WINDOW_S),
        "CMLt": cmlt,
        "AMLt": amlt,
        "offset_ms": median_offset_ms(ref, est),
        "downbeat_F": None,
    }
    if ref_down is not None and est_down is not None:
        out["downbeat_F"] = mir_eval.beat.f_measure(ref_down, est_down, f_measure_threshold=WINDOW_S)
    return out


def run_plain(path: Path) -> tuple[np.ndarray, None]:
    import librosa

    y, sr = librosa.load(str(path), sr=22050)
    _, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    return np.asarray(beats), None


def run_mvgen(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from mvgen.audio.beats import SR, analyze_samples, load_mono

    y = load_mono(path)
    grid = analyze_samples(y, len(y) / SR, name=path.name)
    return np.asarray(grid.beats_s), np.asarray(grid.downbeats_s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/eval/beats"
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    clips = sorted(
        (audio, ann)
        for ann in args.data.glob("*.beats")
        for audio in [next((ann.with_suffix(e) for e in AUDIO_EXTS if ann.with_suffix(e).exists()), None)]
        if audio is not None
    )
    if not clips:
        print(f"no annotated audio under {args.data}", file=sys.stderr)
        return 2
    # Warm both paths (numba JIT, imports) on the first clip so that timings are steady-state.
    run_plain(clips[0][0])
    run_mvgen(clips[0][0])

    import soundfile as sf

    results: dict[str, dict] = {}
    for audio, ann in clips:
        ref, ref_down = read_annotation(ann)
        minutes = sf.info(str(audio)).duration / 60.0
        for name, fn in (("plain", run_plain), ("mvgen", run_mvgen)):
            t0 = time.perf_counter()
            est, est_down = fn(audio)
            secs = time.perf_counter() - t0
            row = score(ref, ref_down, est, est_down)
            row["s_per_min"] = secs / minutes
            results.setdefault(audio.stem, {})[name] = row

    def fmt(v: float | None, spec: str) -> str:
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)

    head = f"{'clip':<28} {'tracker':<7} {'F':>6} {'CMLt':>6} {'AMLt':>6} {'downF':>6} {'offset':>8} {'s/min':>6}"
    print(head)
    print("-" * len(head))
    for clip, rows in results.items():
        for name, r in rows.items():
            print(
                f"{clip[:28]:<28} {name:<7} {r['F']:6.3f} {r['CMLt']:6.3f} {r['AMLt']:6.3f} "
                f"{fmt(r['downbeat_F'], '6.3f'):>6} {fmt(r['offset_ms'], '+7.1f'):>7}ms {r['s_per_min']:6.2f}"
            )
    print("-" * len(head))
    for name in ("plain", "mvgen"):
        rows = [r[name] for r in results.values()]
        downs = [r["downbeat_F"] for r in rows if r["downbeat_F"] is not None]
        print(
            f"{'mean':<28} {name:<7} {statistics.mean(r['F'] for r in rows):6.3f} "
            f"{statistics.mean(r['CMLt'] for r in rows):6.3f} {statistics.mean(r['AMLt'] for r in rows):6.3f} "
            f"{fmt(statistics.mean(downs) if downs else None, '6.3f'):>6} "
            f"{fmt(statistics.median(abs(r['offset_ms']) for r in rows), '7.1f'):>7}ms "
            f"{statistics.mean(r['s_per_min'] for r in rows):6.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
