"""Per-shot time outside the model: everything a render spends per generated shot besides the
denoising call and the VAE decode (cache key hashing, locks, latents saved and removed, frames to
uint8, the lossless clip encode, the record, the atomic rename, progress events).

    python scripts/bench_overhead.py [--reps 3] [--shots 12] [--beats 2] [--size 832x480]

A real render through ``mvgen.pipeline`` (no overlap, so the encode of the video is not mixed in)
of N tiny-model shots generated at the full output size (the tiny preset's quarter-size rendering is
switched off for this bench: the overhead is measured on 480p-sized frames), each repetition from an
empty cache. The model's time is measured around the pipeline call and the VAE decode; the
generation stage's time (``timings_s.generate_s``) less the model load, minus the model's
time, divided by the number of shots, is the per-shot overhead. The model load (in the generation
stage's time, the first render's import of the pipeline's modules included) is taken out and
printed apart: it is paid once per render, not per shot.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--shots", type=int, default=12)
    ap.add_argument("--size", default="832x480")
    ap.add_argument("--beats", type=int, default=2, help="shot length in beats at 120 BPM (tiny: 8 fps)")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="mvgen-bench-overhead-"))
    os.environ["MVGEN_CACHE_DIR"] = str(tmp / "cache")
    os.environ["HF_HUB_OFFLINE"] = "1"

    from mvgen import pipeline
    from mvgen.families import wan
    from mvgen.generate.local import LocalBackend
    from mvgen.options import RenderOptions
    from mvgen.prepare import prepare

    model_s: list[float] = []
    real_sample, real_decode = LocalBackend._sample, wan.decode_video

    def timed(fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                model_s.append(time.perf_counter() - t0)

        return wrapper

    LocalBackend._sample = timed(real_sample)
    wan.decode_video = timed(real_decode)

    sr = 22050
    seconds = args.shots * args.beats * 0.5 + 1.0
    sf.write(str(tmp / "t.wav"), np.zeros(int(seconds * sr), np.float32) + 0.01, sr)
    body = "".join(f"  - {{prompt: 'shot {i}', length: {args.beats}}}\n" for i in range(args.shots))
    shots = tmp / "s.yaml"
    shots.write_text(
        f"version: 1\nmodel: tiny\naudio: {{path: t.wav, bpm: 120}}\nvideo: {{width: {width}, height: {height}, fps: 24}}\n"
        f"generation: {{steps: 2}}\ntiming: {{fit: trim}}\nshots:\n{body}"
    )
    rows = []
    for rep in range(args.reps):
        os.environ["MVGEN_CACHE_DIR"] = str(tmp / f"cache{rep}")
        job = prepare(shots)
        # generate at the output size: the tiny preset otherwise renders a quarter of it
        job = replace(
            job, model=replace(job.model, preset=job.model.preset.model_copy(update={"render_scale": 1.0}))
        )
        model_s.clear()
        r = pipeline.render(job, RenderOptions(overlap=False))
        load = r.timings.get("load_model_s", 0.0)
        gen = r.timings["generate_s"] - load  # the stage's time includes the model load: paid once
        inside = sum(model_s)
        n = r.generated
        rows.append(((gen - inside) / n, load, inside / n, n))
        first = r.manifest["shots"][0]
        print(f"  rep {rep + 1}: {n} shots of {first['num_frames']} frames generated at {width}x{height}: "
              f"generation stage {gen:.2f} s, model {inside:.2f} s, overhead {(gen - inside) / n * 1000:.0f} ms/shot",
              flush=True)  # fmt: skip
    over = statistics.median(r[0] for r in rows)
    print(f"per-shot overhead outside the model (median of {args.reps}): {over * 1000:.0f} ms "
          f"{[round(r[0] * 1000) for r in rows]}; model per shot {statistics.median(r[2] for r in rows):.2f} s; "
          f"model load (once per render) {statistics.median(r[1] for r in rows):.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
