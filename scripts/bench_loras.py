"""Benchmark: LoRAs on the tiny model. Seconds per denoising step with no LoRA (the floor), with a
LoRA active through PEFT's adapter layers (unfused), and with it fused into the weights; and the time
to switch the active set between two shots (``set_adapters``, loading excluded). Runs are
interleaved, medians reported, all in one process on one loaded model.

    python scripts/bench_loras.py [--reps 5] [--steps 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-loras-"))
    os.environ.setdefault("MVGEN_CACHE_DIR", str(tmp / "cache"))
    import train_tiny_lora
    from mvgen.config.presets import resolve_model
    from mvgen.generate.base import ShotRequest
    from mvgen.generate.local import LocalBackend
    from mvgen.timeline import LoraUse

    files = {look: train_tiny_lora.train(tmp / f"{look}.safetensors", look=look, log=lambda m: None)
             for look in ("sunset", "night")}  # fmt: skip
    uses = {look: LoraUse(f"lora_{look}", str(p), look, 1.0) for look, p in files.items()}
    gen = LocalBackend(resolve_model("tiny"), device="cpu")
    gen.load()

    def request(loras: tuple, fuse: bool) -> ShotRequest:
        return ShotRequest(shot_id="b", prompt="blue embers, holding still", negative="", seed=3, width=208,
                           height=128, num_frames=17, steps=args.steps, guidance=5.0, max_sequence_length=64,
                           fps=8.0, loras=loras, fuse_loras=fuse)  # fmt: skip

    def per_step(loras: tuple, fuse: bool) -> float:
        ticks: list[float] = []
        gen.generate(request(loras, fuse), lambda i, n: ticks.append(time.perf_counter()))
        return statistics.median(b - a for a, b in zip(ticks, ticks[1:], strict=False))

    per_step((uses["sunset"],), False)  # warm-up: loads the LoRA, first-call costs
    rows: dict[str, list[float]] = {"no LoRA (floor)": [], "LoRA, unfused": [], "LoRA, fused": []}
    for _ in range(args.reps):
        rows["no LoRA (floor)"].append(per_step((), False))
        rows["LoRA, unfused"].append(per_step((uses["sunset"],), False))
        rows["LoRA, fused"].append(per_step((uses["sunset"],), True))
    switch = gen._loras[id(gen.pipe)]
    switch.switch_s.clear()
    for k in range(args.reps * 2):  # alternate between two sets, as shots with different LoRAs do
        switch.use(gen.pipe, (uses["sunset"],) if k % 2 else (uses["night"],))
    floor = statistics.median(rows["no LoRA (floor)"])
    print(f"tiny, 208x128, 17 frames, {args.steps} steps, {args.reps} reps, {os.cpu_count()} CPUs")
    for name, values in rows.items():
        med = statistics.median(values)
        print(f"{name:<18} median {med * 1000:7.1f} ms/step  x{med / floor:.3f} of the floor  "
              f"(runs: {', '.join(f'{v * 1000:.1f}' for v in values)})")  # fmt: skip
    print(f"switching the active set: median {statistics.median(switch.switch_s) * 1000:.2f} ms "
          f"(runs: {', '.join(f'{v * 1000:.2f}' for v in switch.switch_s)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
