"""Benchmark: render the example on the tiny model from an empty cache (cold: the tiny model is
built, every shot generated, the video encoded), then again unchanged (warm: nothing generated,
nothing re-encoded). Each repetition uses a fresh cache; the figures are medians, and the ratio is
taken from the same runs.

    python scripts/bench_render.py [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "neon-drive" / "shots.yaml"


def timed_render(out: Path, cache: Path) -> tuple[float, dict]:
    env = {**os.environ, "MVGEN_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mvgen", "render", str(EXAMPLE), "--model", "tiny", "--out", str(out), "-q"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    return wall, json.loads(out.with_suffix(".json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    cold, warm, stages = [], [], []
    for rep in range(args.reps):
        work = Path(tempfile.mkdtemp(prefix="mvgen-bench-"))
        try:
            out = work / "neon-drive.mp4"
            c, m1 = timed_render(out, work / "cache")
            w, m2 = timed_render(out, work / "cache")
            assert all(s["cached"] for s in m2["shots"]) and not m2["output"]["reencoded"]
            cold.append(c)
            warm.append(w)
            stages.append(m1["timings_s"])
            print(f"rep {rep + 1}: cold {c:.2f}s, warm {w:.2f}s, stages {m1['timings_s']}", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    mc, mw = statistics.median(cold), statistics.median(warm)
    print(f"\nexample (40 s, 832x480 @ 24 fps, 10 shots, tiny), {args.reps} reps, {os.cpu_count()} CPUs")
    print(f"cold render (empty cache)  median {mc:.2f}s  (runs: {', '.join(f'{x:.2f}' for x in cold)})")
    print(f"second render (unchanged)  median {mw:.2f}s  (runs: {', '.join(f'{x:.2f}' for x in warm)})")
    print(f"ratio cold/second: {mc / mw:.1f}x")
    for key in ("generate_s", "assemble_s"):
        print(f"cold {key}: median {statistics.median(s[key] for s in stages):.2f}s")


if __name__ == "__main__":
    main()
