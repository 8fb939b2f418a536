"""How long beat analysis takes on a 4-minute track, fresh and from the cache.

    python scripts/bench_beats.py [--reps 5] [--minutes 4]

Synthesizes a 124 BPM drum track (tests/synth.py) with a new section (pattern, swing) every minute,
writes it as WAV and FLAC, warms librosa up once (numba compiles its kernels on first use: ~20 s
once per environment), then times ``api.analyze_audio`` without the cache (decode + analysis) and
with it (a content-hash lookup). Prints the median of ``--reps`` runs of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_track(folder: Path, minutes: float) -> list[Path]:
    from tests.synth import steady_beats, synth_track

    parts = []
    for k in range(int(np.ceil(minutes))):
        # 124 BPM: a minute is exactly 31 bars, so the sections join on downbeats.
        swing = (0.5, 0.6, 0.5, 0.667)[k % 4]
        p = synth_track(
            folder / f"part{k}.wav", steady_beats(124.0, 60.0), duration_s=60.0, seed=k, swing=swing
        )
        parts.append(sf.read(str(p))[0])
    y = np.concatenate(parts)[: int(minutes * 60 * 22050)]
    stereo = np.stack([y, y], axis=1).astype(np.float32)
    wav, flac = folder / "track.wav", folder / "track.flac"
    sf.write(str(wav), stereo, 22050)
    sf.write(str(flac), stereo, 22050)
    return [wav, flac]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=4.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mvgen-bench-beats-") as tmp:
        os.environ["MVGEN_CACHE_DIR"] = str(Path(tmp) / "cache")
        from mvgen import api

        tracks = make_track(Path(tmp), args.minutes)
        api.analyze_audio(tracks[0], use_cache=False)  # warm-up: imports, numba JIT
        print(f"{args.minutes:g}-minute track, median of {args.reps} runs")
        for track in tracks:
            fresh, cached = [], []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                grid = api.analyze_audio(track, use_cache=False)
                fresh.append(time.perf_counter() - t0)
            api.analyze_audio(track)  # fill the cache
            for _ in range(args.reps):
                t0 = time.perf_counter()
                api.analyze_audio(track)
                cached.append(time.perf_counter() - t0)
            print(
                f"  {track.suffix[1:]:<5} analysis {statistics.median(fresh):6.2f} s   "
                f"cached {statistics.median(cached) * 1000:7.1f} ms   "
                f"({grid.tempo_bpm:.1f} BPM, {len(grid.beats_s)} beats, {len(grid.sections_s)} section bounds)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
