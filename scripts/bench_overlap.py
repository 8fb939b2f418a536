"""Generation and encoding side by side (overlap) against one after the other.

    python scripts/bench_overlap.py [--reps 3] [--shots 12] [--steps 12]

Renders a shot list of N tiny-model shots (one bar each at 120 BPM, 832x480 output) from an empty
cache with ``--no-overlap`` and with the default overlap, alternating, each a fresh process. The
model gets one CPU thread (``OMP_NUM_THREADS=1``) and the encoder one (``output: {threads: 1}``):
on this 2-core machine that stands for a GPU sampling while the CPU encodes, each with a core of
its own. From the manifests (``timings_s``):

* sequential: generate_s (sum of generation) and assemble_s (sum of encoding), and their sum;
* overlapped: generate_s + assemble_s (the encode's tail after the last shot), compared with
  max(generation, encoding) of the sequential runs (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def write_inputs(folder: Path, shots: int, steps: int) -> Path:
    seconds = shots * 2.0 + 1.0
    sr = 22050
    t = np.arange(int(seconds * sr)) / sr
    click = (np.sin(2 * np.pi * 1000 * t) * np.exp(-((t % 0.5) * 40))).astype(np.float32) * 0.5
    sf.write(str(folder / "track.wav"), click, sr)
    body = "".join(f"  - {{prompt: 'shot {i}, colour {i * 30}', length: 1 bar}}\n" for i in range(shots))
    path = folder / "shots.yaml"
    path.write_text(
        "version: 1\nmodel: tiny\naudio: {path: track.wav, bpm: 120}\n"
        "output: {path: out.mp4, preset: medium, threads: 1}\n"
        f"generation: {{steps: {steps}}}\ntiming: {{fit: trim}}\nshots:\n{body}"
    )
    return path


def run(shots: Path, cache: Path, overlap: bool) -> dict:
    env = {**os.environ, "MVGEN_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "mvgen", "render", str(shots), "-q"] + ([] if overlap else ["--no-overlap"])
    subprocess.run(args, check=True, env=env, capture_output=True)
    m = json.loads((shots.parent / "out.json").read_text())
    assert m["generation"]["overlap"] == overlap
    return m["timings_s"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--shots", type=int, default=12)
    ap.add_argument("--steps", type=int, default=12)
    args = ap.parse_args()
    seq, ovl = [], []
    with tempfile.TemporaryDirectory(prefix="mvgen-bench-overlap-") as tmp:
        folder = Path(tmp)
        shots = write_inputs(folder, args.shots, args.steps)
        subprocess.run([sys.executable, "-m", "mvgen", "models"], check=True, capture_output=True)
        for rep in range(args.reps):
            for overlap in (False, True):
                cache = folder / f"cache-{rep}-{overlap}"
                t = run(shots, cache, overlap)
                (ovl if overlap else seq).append(t)
                print(f"  rep {rep + 1} {'overlap   ' if overlap else 'sequential'}: generate {t['generate_s']:.2f} s, "
                      f"assemble {t['assemble_s']:.2f} s", flush=True)  # fmt: skip
    gen = statistics.median(t["generate_s"] for t in seq)
    enc = statistics.median(t["assemble_s"] for t in seq)
    seq_total = statistics.median(t["generate_s"] + t["assemble_s"] for t in seq)
    ovl_total = statistics.median(t["generate_s"] + t["assemble_s"] for t in ovl)
    print(f"{args.shots} shots, {args.steps} steps, medians of {args.reps}:")
    print(f"  sequential: generation {gen:.2f} s + encoding {enc:.2f} s = {seq_total:.2f} s")
    print(f"  overlapped: generation + encoding tail = {ovl_total:.2f} s")
    print(f"  overlapped / max(generation, encoding) = {ovl_total / max(gen, enc):.3f}; "
          f"overlapped / sequential = {ovl_total / seq_total:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
