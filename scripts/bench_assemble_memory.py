"""Peak memory of assembly against the number of shots (streaming check).

    python scripts/bench_assemble_memory.py [--shots 6 24 96] [--size 832x480]

Writes synthetic lossless clips (33 frames each, at a quarter of the output size like the tiny
model), plans a list of N one-bar shots at 120 BPM with a crossfade on every cut and a camera move on
every shot, and runs the real assembly (moviepy -> libx264 -> AAC mux) under ``tracemalloc``. numpy
reports its buffers to tracemalloc, so the peak covers every frame array the assembly holds; ffmpeg's
own memory (a separate process) is not included. Streaming means the peak stays flat as N grows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(n_shots: int, width: int, height: int, folder: Path) -> tuple[float, float, int]:
    from mvgen.audio.grid import BeatGrid
    from mvgen.audio.probe import probe_audio
    from mvgen.config import parse_shotlist_text
    from mvgen.config.presets import all_presets
    from mvgen.media.assemble import assemble
    from mvgen.media.clips import write_clip
    from mvgen.timeline import plan_video

    duration = n_shots * 2.0
    audio = folder / f"a{n_shots}.wav"
    sf.write(str(audio), np.zeros((int(duration * 22050), 2), dtype=np.float32) + 0.01, 22050)
    beats = tuple(np.arange(0.0, duration, 0.5))
    grid = BeatGrid(120.0, duration, beats, beats[::4], ())
    body = "".join(
        f"  - {{prompt: shot {i}, length: 1 bar, transition: {{crossfade: 1}}, camera: {{zoom: [1.0, 1.2]}}}}\n"
        for i in range(n_shots)
    )
    shots = parse_shotlist_text(
        f"video: {{width: {width}, height: {height}, fps: 24}}\ntiming: {{fit: trim}}\nshots:\n{body}",
        Path("b.yaml"),
    )
    plan = plan_video(shots, grid, all_presets()["tiny"])
    rng = np.random.default_rng(0)
    clips = []
    for i, s in enumerate(plan.shots):
        frames = rng.integers(0, 255, (s.num_frames, plan.gen_height, plan.gen_width, 3), dtype=np.uint8)
        path = folder / f"c{n_shots}-{i}.mkv"
        write_clip(path, frames, plan.native_fps)
        clips.append(path)
    info = probe_audio(audio)
    tracemalloc.start()
    t0 = time.perf_counter()
    assemble(plan, clips, info, folder / f"out{n_shots}.mp4", x264_preset="ultrafast")
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, seconds, plan.total_frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, nargs="+", default=[6, 24, 96])
    ap.add_argument("--size", default="832x480")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(f"assembly at {width}x{height}, 24 fps, one-bar shots with crossfades and camera moves")
    with tempfile.TemporaryDirectory(prefix="mvgen-bench-asm-") as tmp:
        for n in args.shots:
            peak, seconds, frames = run(n, width, height, Path(tmp))
            print(f"  {n:4d} shots, {frames:5d} frames: peak {peak:7.1f} MiB traced, {seconds:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
