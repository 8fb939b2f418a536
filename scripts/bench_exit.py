"""The whole `mvgen render` command of a small cron-style job, ending the process as mvgen does
(``cli.exit_now``: the work's cleanup, then no interpreter teardown) against ending it the usual
way (``sys.exit`` after the same ``cli.run``), alternated so that both see the same machine.

    python scripts/bench_exit.py [--reps 5] [--threads 1]

The job: two shot lists of 6 tiny shots each (64x64, 2 steps), the beat grid given, each
repetition from a cache holding only the tiny model. What differs is only what happens after the
last job is done: Python's own teardown of torch, diffusers and transformers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

JOB = """model: tiny
audio: {{path: t.wav, bpm: 120}}
video: {{width: 64, height: 64, fps: 12}}
generation: {{steps: 2, seed: {seed}}}
timing: {{fit: trim}}
shots:
{shots}"""
USUAL = "import sys; from mvgen.cli import run; sys.exit(run(sys.argv[1:]))"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="OMP threads of each run (cron tests use 1)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mvgen-bench-exit-"))
    t = np.arange(6 * 22050) / 22050
    sf.write(
        work / "t.wav", (0.3 * np.sin(2 * np.pi * 220 * t) * (np.mod(t, 0.5) < 0.1)).astype(np.float32), 22050
    )
    for name, seed in (("a", 1), ("b", 100)):
        shots = "".join(f"  - {{id: s{i}, prompt: '{name} shot {i}', length: 2}}\n" for i in range(6))
        (work / f"{name}.yaml").write_text(JOB.format(seed=seed, shots=shots))
    env = {**os.environ, "MVGEN_CACHE_DIR": str(work / "cache"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": str(args.threads)}  # fmt: skip
    subprocess.run([sys.executable, "-m", "mvgen", "validate", str(work / "a.yaml")], env=env, check=True)
    subprocess.run([sys.executable, "-m", "mvgen", "render", str(work / "a.yaml"), "-q"], env=env, check=True)
    times: dict[str, list[float]] = {"mvgen (exit_now)": [], "usual exit": []}
    for _ in range(args.reps):
        for label, head in (("mvgen (exit_now)", ["-m", "mvgen"]), ("usual exit", ["-c", USUAL])):
            shutil.rmtree(work / "cache" / "shots", ignore_errors=True)
            for out in work.glob("[ab].*"):
                if out.suffix != ".yaml":
                    out.unlink()
            started = time.perf_counter()
            r = subprocess.run([sys.executable, *head, "render", str(work / "a.yaml"), str(work / "b.yaml"), "-q"],
                               env=env, capture_output=True)  # fmt: skip
            times[label].append(time.perf_counter() - started)
            if r.returncode != 0:
                print(r.stderr.decode()[-2000:], file=sys.stderr)
                return 1
    new, old = (statistics.median(v) for v in times.values())
    for label, values in times.items():
        print(
            f"{label:18s} median {statistics.median(values):6.2f} s  ({', '.join(f'{v:.2f}' for v in values)})"
        )
    print(f"saved {old - new:.2f} s a run ({1 - new / old:.0%} of the whole command)")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
