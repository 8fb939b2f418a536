"""Step caches on a trained model: time per shot, transformer passes and the picture against none.

    python scripts/bench_step_cache.py [--steps 30] [--prompts 6] [--frames 33] [--size 208x128]

The trained `tiny` model (the Wan 2.1 architecture, scripts/train_tiny.py) samples the same prompts
and seeds with no step cache, with First Block Cache (`cache: fbc`) and with MagCache (`cache:
magcache`), each at its default threshold, in turn per prompt (none, fbc, magcache, next prompt...),
through mvgen's own backend (`LocalBackend.generate`: sampling and VAE decode). MagCache's ratios are
measured before the timed runs (that one-off cost is printed apart). For each mode: the median
seconds per shot and its ratio to none, the transformer passes that ran their blocks (a reused step
runs only the first block), and the decoded frames' PSNR against the uncached frames (8-bit RGB, dB).

The tiny model's time is split between the transformer and the VAE decode, so the speed-up per shot
is smaller than the share of passes saved; on a full-size model nearly all the time is in the
transformer's passes.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

PROMPTS = [
    "a red city at night, lights moving left",
    "a blue ocean, waves, pan right",
    "a green forest, still",
    "a yellow desert road, moving up",
    "a purple sky over mountains, pan left",
    "an orange sunset over the sea, moving down",
    "a cyan neon tunnel, still",
    "a white snowfield, pan right",
]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--size", default="208x128")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    os.environ.setdefault("MVGEN_CACHE_DIR", tempfile.mkdtemp(prefix="mvgen-bench-step-cache-"))
    os.environ["HF_HUB_OFFLINE"] = "1"

    import torch

    from mvgen.config.presets import resolve_model
    from mvgen.config.schema import STEP_CACHE_THRESHOLDS, GenerationSettings
    from mvgen.generate.base import ShotRequest
    from mvgen.generate.local import LocalBackend

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    backend = LocalBackend(resolve_model("tiny"), device="cpu")
    backend.load()
    blocks = backend.pipe.transformer.blocks
    passes = [0]
    # the last block's feed-forward runs only on a pass that was not reused
    blocks[-1].ffn.register_forward_hook(lambda *a: passes.__setitem__(0, passes[0] + 1))
    modes = ["none", "fbc", "magcache"]
    base = ShotRequest("bench", "", "", 0, width, height, args.frames, args.steps, 2.0, 64, fps=8.0)

    def request(mode: str, i: int) -> ShotRequest:
        threshold = GenerationSettings(cache=mode).step_cache_threshold()  # the shot list's default
        return replace(base, prompt=PROMPTS[i % len(PROMPTS)], seed=100 + i, step_cache=mode,
                       step_cache_threshold=threshold)  # fmt: skip

    t0 = time.perf_counter()
    backend.generate(request("magcache", 0), lambda i, n: None)  # measures the ratios, then samples
    warm_s = time.perf_counter() - t0
    seconds: dict[str, list[float]] = {m: [] for m in modes}
    ran: dict[str, list[int]] = {m: [] for m in modes}
    quality: dict[str, list[float]] = {m: [] for m in modes}
    for i in range(args.prompts):
        frames: dict[str, np.ndarray] = {}
        for mode in modes:
            passes[0] = 0
            t0 = time.perf_counter()
            frames[mode] = backend.generate(request(mode, i), lambda i, n: None)
            seconds[mode].append(time.perf_counter() - t0)
            ran[mode].append(passes[0])
            quality[mode].append(psnr(frames[mode], frames["none"]))
        print(f"  prompt {i + 1}: " + ", ".join(f"{m} {seconds[m][-1]:.2f} s ({ran[m][-1]} passes)" for m in modes),
              flush=True)  # fmt: skip
    print(f"tiny (trained Wan), {width}x{height}, {args.frames} frames, {args.steps} steps, guidance 2.0 "
          f"(2 passes a step), {args.prompts} prompts; CPU threads {torch.get_num_threads()}")  # fmt: skip
    print(f"  first MagCache shot (measuring the ratios + the shot): {warm_s:.2f} s")
    none_s = statistics.median(seconds["none"])
    for mode in modes:
        med = statistics.median(seconds[mode])
        q = [v for v in quality[mode] if np.isfinite(v)]
        qual = (
            f"PSNR vs none {statistics.median(q):.1f} dB (min {min(q):.1f})"
            if q
            else "PSNR vs none: identical"
        )
        print(f"  {mode:9s} threshold {STEP_CACHE_THRESHOLDS.get(mode, '-')!s:5s}: median {med:.2f} s/shot "
              f"(x{none_s / med:.2f} speed), passes run {statistics.median(ran[mode]):.0f} of {2 * args.steps}, {qual}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
