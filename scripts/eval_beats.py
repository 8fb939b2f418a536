"""Measure mvgen's beat tracker against human annotations, side by side with plain librosa.

    python scripts/eval_beats.py [--data ../shared/eval/beats] [--json results.json]
    python scripts/eval_beats.py --loo            # + leave-one-out fit of the tuned constants
    python scripts/eval_beats.py --generated      # the generated set (tests/music.py) instead
    python scripts/eval_beats.py --variants       # its held-out variants (other tempi, a waltz)

``--loo`` fits ``TrackerParams`` on all clips but one by grid search (mean F), scores the clip left
out with the fitted constants, and prints those held-out figures beside the in-sample ones (the
shipped defaults on every clip). It fits two groups in turn, the other at its shipped values: the
tempo prior's centre and width, the low-band weight and the latency; then the pulse-level choice
(the local window, the share that is a tie, how clearly accents must repeat to make a bar). With ``--generated`` it does
the same on the generated pieces.
``--generated`` renders the pieces of ``tests/music.py`` (exact ground truth: tempo curves, swing,
6/8, 7/8, syncopation, off-beats, a half-time section, a quiet intro, live jitter, no drums) into a
temporary folder and adds the tempo error: for steady pieces |tempo_bpm / true - 1|, for curved
ones the median over the tempo curve of |curve / true local tempo - 1|.

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


def run_plain(path: Path) -> tuple[np.ndarray, None, None]:
    import librosa

    y, sr = librosa.load(str(path), sr=22050)
    _, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    return np.asarray(beats), None, None


def run_mvgen(path: Path, params=None, *, keep_audio: bool = False):
    from mvgen.audio.beats import SR, analyze_samples, load_mono
    from mvgen.audio.tempo import PARAMS

    y = _AUDIO.get(path)
    if y is None:
        y = load_mono(path)
        if keep_audio:  # --loo analyses each clip many times: decode it once
            _AUDIO[path] = y
    grid = analyze_samples(y, len(y) / SR, name=path.name, params=params or PARAMS)
    return np.asarray(grid.beats_s), np.asarray(grid.downbeats_s), grid


_AUDIO: dict[Path, np.ndarray] = {}
# The constants --loo fits, in two groups fitted one after the other (the other group at its
# shipped values), and the values it tries (the shipped default is in each list).
GRID = {
    "prior_bpm": (100.0, 120.0, 140.0),
    "prior_octaves": (1.0, 1.5, 2.0),
    "low_weight": (0.25, 0.5),
    "latency_s": (0.012, 0.024, 0.036),
}
LEVEL_GRID = {  # choosing the pulse level
    "local_window_s": (4.0, 6.0, 8.0),
    "share_tie": (0.05, 0.1, 0.2),
    "bar_repeat": (0.4, 0.5, 0.6),
}


def leave_one_out(clips: list[tuple[Path, Path]], grid: dict[str, tuple]) -> dict[str, dict]:
    """For each clip: the constants that score best (mean F) on the others, and its F with them."""
    import dataclasses
    import itertools

    import mir_eval

    from mvgen.audio.tempo import PARAMS

    refs = {audio: read_annotation(ann)[0] for audio, ann in clips}
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    table = np.zeros((len(combos), len(clips)))
    for i, combo in enumerate(combos):
        params = dataclasses.replace(PARAMS, **combo)
        for j, (audio, _) in enumerate(clips):
            est, _, _ = run_mvgen(audio, params, keep_audio=True)
            table[i, j] = mir_eval.beat.f_measure(refs[audio], est, f_measure_threshold=WINDOW_S)
    # Ties (common: most constants move no beat on a given clip) go to the shipped defaults.
    defaults = np.array([sum(getattr(PARAMS, k) == v for k, v in c.items()) for c in combos])

    def pick(scores: np.ndarray) -> int:
        tied = np.flatnonzero(scores >= scores.max() - 1e-9)
        return int(tied[np.argmax(defaults[tied])])

    out = {}
    for j, (audio, _) in enumerate(clips):
        others = np.delete(table, j, axis=1).mean(axis=1)
        best = pick(others)
        out[audio.stem] = {"F": float(table[best, j]), "fitted": combos[best], "train_F": float(others[best])}
    all_best = pick(table.mean(axis=1))
    out["_all"] = {"fitted": combos[all_best], "F": float(table[all_best].mean())}
    return out


def generated_clips(folder: Path, *, variants: bool = False) -> tuple[list[tuple[Path, Path]], dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests import music

    pieces = {}
    for piece in music.variants() if variants else music.all_pieces():
        music.write(piece, folder)
        pieces[piece.name] = piece
    return sorted((folder / f"{n}.wav", folder / f"{n}.beats") for n in pieces), pieces


def tempo_error(piece, grid) -> float:
    """Relative tempo error: of tempo_bpm on a steady piece, the median along the curve otherwise."""
    if piece.steady or not grid.tempo_curve:
        true = piece.tempo_bpm if piece.steady else float(np.median(piece.local_bpm(piece.beats_s)))
        return abs(grid.tempo_bpm / true - 1.0)
    t = np.array([p[0] for p in grid.tempo_curve])
    bpm = np.array([p[1] for p in grid.tempo_curve])
    return float(np.median(np.abs(bpm / piece.local_bpm(t) - 1.0)))


def print_loo(title: str, loo: dict[str, dict], results: dict[str, dict]) -> None:
    print(
        f"\nleave-one-out, {title}: constants fitted on the other clips (grid search, mean F), F on the clip left out"
    )
    for clip in results:
        row = loo[clip]
        fitted = ", ".join(f"{k}={v:g}" for k, v in row["fitted"].items())
        print(
            f"  {clip[:28]:<28} held-out F {row['F']:.3f} (in-sample {results[clip]['mvgen']['F']:.3f}) {fitted}"
        )
        results[clip]["mvgen"].setdefault("loo_F", {})[title] = row["F"]
    held = [loo[c]["F"] for c in results]
    print(f"  mean held-out F {statistics.mean(held):.3f}, worst {min(held):.3f}; "
          f"in-sample with the shipped defaults {statistics.mean(r['mvgen']['F'] for r in results.values()):.3f}; "
          f"best constants on all clips: {loo['_all']['fitted']} (F {loo['_all']['F']:.3f})")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/eval/beats"
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--loo", action="store_true", help="also fit the tuned constants leave-one-out")
    ap.add_argument("--generated", action="store_true", help="evaluate on the generated set instead")
    ap.add_argument(
        "--variants",
        action="store_true",
        help="evaluate on the held-out variants of the generated set instead",
    )
    args = ap.parse_args()
    import tempfile

    pieces: dict = {}
    with tempfile.TemporaryDirectory(prefix="mvgen-beat-set-") as tmp:
        if args.generated or args.variants:
            clips, pieces = generated_clips(Path(tmp), variants=args.variants)
        else:
            clips = sorted(
                (audio, ann)
                for ann in args.data.glob("*.beats")
                for audio in [
                    next((ann.with_suffix(e) for e in AUDIO_EXTS if ann.with_suffix(e).exists()), None)
                ]
                if audio is not None
            )
        if not clips:
            print(f"no annotated audio under {args.data}", file=sys.stderr)
            return 2
        return evaluate(clips, pieces, args)


def evaluate(clips: list[tuple[Path, Path]], pieces: dict, args: argparse.Namespace) -> int:
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
            est, est_down, grid = fn(audio)
            secs = time.perf_counter() - t0
            row = score(ref, ref_down, est, est_down)
            row["s_per_min"] = secs / minutes
            if name == "mvgen":
                row["tempo_bpm"] = grid.tempo_bpm
                row["confidence"] = grid.confidence.overall if grid.confidence else None
                if audio.stem in pieces:
                    row["tempo_err"] = tempo_error(pieces[audio.stem], grid)
            results.setdefault(audio.stem, {})[name] = row

    def fmt(v: float | None, spec: str) -> str:
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)

    head = (
        f"{'clip':<28} {'tracker':<7} {'F':>6} {'CMLt':>6} {'AMLt':>6} {'downF':>6} {'offset':>8} {'s/min':>6}"
        f" {'tempo':>6} {'conf':>5}" + (" tempo_err" if pieces else "")
    )
    print(head)
    print("-" * len(head))
    for clip, rows in results.items():
        for name, r in rows.items():
            print(
                f"{clip[:28]:<28} {name:<7} {r['F']:6.3f} {r['CMLt']:6.3f} {r['AMLt']:6.3f} "
                f"{fmt(r['downbeat_F'], '6.3f'):>6} {fmt(r['offset_ms'], '+7.1f'):>7}ms {r['s_per_min']:6.2f}"
                f" {fmt(r.get('tempo_bpm'), '6.1f'):>6} {fmt(r.get('confidence'), '5.2f'):>5}"
                + (f" {fmt(r.get('tempo_err', float('nan')) * 100, '8.2f')}%" if pieces else "")
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
    if pieces:
        for kind, steady in (("steady", True), ("curved", False)):
            errs = [results[n]["mvgen"]["tempo_err"] for n, p in pieces.items() if p.steady == steady]
            if not errs:
                continue
            within = sum(e <= (0.02 if steady else 0.04) for e in errs)
            print(
                f"tempo error, {kind} pieces: median {statistics.median(errs) * 100:.2f} %, "
                f"{within}/{len(errs)} within {'2' if steady else '4'} %"
            )
    if args.loo:
        for title, grid in (("tempo prior, bands, latency", GRID), ("pulse-level choice", LEVEL_GRID)):
            print_loo(title, leave_one_out(clips, grid), results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
