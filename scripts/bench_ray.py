"""Ray speed-up: 12 independent tiny shots on 2 workers against 1, one torch thread per worker.

    pip install -e ".[ray]" && python scripts/bench_ray.py [--reps 3]

Ray is started once (2 CPUs), as a cluster would already be running; each run renders the same
12-shot list (832x480 output, tiny at 208x128, 25-29 frames, 30 steps) into a fresh cache with
``ray_workers`` 1 or 2, alternating. Timed, from the manifest: the rendering span (first shot
started to last shot finished, on the workers' clocks) and the whole generation stage
(``timings_s.generate_s``: worker processes start, import torch, load the model, then the span).
Prints the medians and their ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHOTS = """version: 1
model: tiny
audio: t.wav
video: {{width: 832, height: 480, fps: 24}}
generation: {{steps: 30, seed: 5}}
timing: {{fit: trim}}
shots:
{shots}
"""
PROMPTS = ["a red car", "a blue sea", "a green forest", "a white room", "a yellow field", "a purple sky",
           "an orange sunset", "a cyan pool", "a grey city", "a black cat", "a pink flower", "a brown desk"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    import ray

    from mvgen import api
    from mvgen.generate.tiny import ensure_tiny
    from tests.synth import steady_beats, synth_track

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["MVGEN_CACHE_DIR"] = str(root / "models-cache")
        ensure_tiny()
        synth_track(root / "t.wav", steady_beats(120, 50), duration_s=50.0)
        body = "\n".join(f"  - {{id: s{i:02d}, prompt: {p}, length: 6}}" for i, p in enumerate(PROMPTS))
        (root / "s.yaml").write_text(SHOTS.format(shots=body))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        times: dict[int, list[float]] = {1: [], 2: []}
        spans: dict[int, list[float]] = {1: [], 2: []}
        try:
            for rep in range(args.reps):
                for workers in (1, 2):
                    cache = root / f"cache-{workers}-{rep}"
                    cache.mkdir()
                    (cache / "models").symlink_to(root / "models-cache" / "models")
                    os.environ["MVGEN_CACHE_DIR"] = str(cache)
                    r = api.render_video(root / "s.yaml", out=str(root / f"o{workers}.mp4"), backend="ray",
                                         ray_workers=workers)  # fmt: skip
                    assert r.generated == 12, r.generated
                    times[workers].append(r.manifest["timings_s"]["generate_s"])
                    placed = [s["ray"] for s in r.manifest["shots"]]
                    spans[workers].append(
                        max(p["finished"] for p in placed) - min(p["started"] for p in placed)
                    )
                    print(f"rep {rep + 1}: {workers} worker(s): span {spans[workers][-1]:.2f} s, "
                          f"stage {times[workers][-1]:.2f} s", flush=True)  # fmt: skip
        finally:
            ray.shutdown()
    print(json.dumps({"stage": times, "span": spans}))
    for name, data in (("rendering span", spans), ("generation stage", times)):
        one, two = statistics.median(data[1]), statistics.median(data[2])
        print(f"{name}: median 1 worker {one:.2f} s, 2 workers {two:.2f} s, speed-up {one / two:.2f}x")


if __name__ == "__main__":
    main()
