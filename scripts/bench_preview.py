"""How long the animatic of the example takes, and what the report adds to a render.

    python scripts/bench_preview.py [--reps 3]

1. ``mvgen render examples/neon-drive/shots.yaml --preview`` as a user runs it (a new process each
   time, the beat analysis cached after the first run): wall time of the whole command, median of
   ``--reps`` runs, and the first run with an empty cache (analysis included).
2. The report beside a render (contact sheet + beat plot + OUT.html) for the example rendered on the
   tiny model: ``report.write_report`` timed on its own, median of ``--reps``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "neon-drive" / "shots.yaml"


def _mvgen(*args: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mvgen", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MVGEN_CACHE_DIR": str(Path(tmp) / "cache"), "HF_HUB_OFFLINE": "1"}
        out = str(Path(tmp) / "neon.mp4")
        cold = _mvgen("render", str(EXAMPLE), "--preview", "--model", "tiny", "--out", out, env=env)
        warm = [_mvgen("render", str(EXAMPLE), "--preview", "--model", "tiny", "--out", out, env=env)
                for _ in range(args.reps)]  # fmt: skip
        manifest = json.loads(Path(tmp, "neon.preview.json").read_text())
        print(f"preview, 960 frames 832x480: first run (analysis included) {cold:.2f} s; "
              f"cached analysis: median {statistics.median(warm):.2f} s of {args.reps} "
              f"({', '.join(f'{t:.2f}' for t in warm)})")  # fmt: skip
        print(f"  encode inside the command: {manifest['timings_s']['total_s']:.2f} s")

        _mvgen("render", str(EXAMPLE), "--model", "tiny", "--out", out, env=env)
        os.environ.update(env)
        from mvgen import api
        from mvgen.cache import ShotCache
        from mvgen.report import write_report

        job = api.load_project(EXAMPLE, model="tiny", out=out)
        plan = api.plan_video(job)
        grid = api.beat_grid(job)
        rendered = json.loads(Path(tmp, "neon.json").read_text())
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            write_report(job.out, plan, grid, job.audio.path, rendered, ShotCache())
            times.append(time.perf_counter() - t0)
        total = rendered["timings_s"]["total_s"]
        print(f"report (contact sheet + beat plot + html): median {statistics.median(times):.2f} s of {args.reps} "
              f"({', '.join(f'{t:.2f}' for t in times)}); the render it belongs to took {total:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
