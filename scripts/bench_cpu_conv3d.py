#!/usr/bin/env python
"""The tiny model's VAE decode on the CPU, PyTorch's own choice of 3D-convolution kernel against
mvgen's routing through oneDNN (``mvgen.generate.levers.onednn_conv3d``), side by side in one run.

    python scripts/bench_cpu_conv3d.py [--repeats 5]

Prints the median seconds to decode one clip of the tiny preset (33 frames, 208x128) each way,
their ratio, and the largest difference between the two decodes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import torch
    from diffusers import WanPipeline

    from mvgen.families.wan import install_tiny
    from mvgen.generate.levers import onednn_conv3d

    with tempfile.TemporaryDirectory() as tmp:
        install_tiny(Path(tmp) / "m")
        pipe = WanPipeline.from_pretrained(Path(tmp) / "m" / "t2v", use_safetensors=True)
    latents = torch.randn(1, 16, 9, 16, 26, generator=torch.Generator().manual_seed(0))
    convs = [m for m in pipe.vae.modules() if isinstance(m, torch.nn.Conv3d)]

    def decode() -> tuple[float, torch.Tensor]:
        start = time.perf_counter()
        with torch.no_grad():
            out = pipe.vae.decode(latents).sample
        return time.perf_counter() - start, out

    own, routed = [], []
    decode()  # warm-up
    for _ in range(args.repeats):  # interleaved, so that both see the same machine
        for m in convs:
            vars(m).pop("_conv_forward", None)
        t, a = decode()
        own.append(t)
        onednn_conv3d(pipe)
        t, b = decode()
        routed.append(t)
    m_own, m_routed = statistics.median(own), statistics.median(routed)
    print(
        f"tiny VAE decode, 33 frames at 208x128, {torch.get_num_threads()} threads, median of {args.repeats}:"
    )
    print(f"  PyTorch's kernel choice  {m_own:.3f} s")
    print(f"  oneDNN                   {m_routed:.3f} s   ({m_own / m_routed:.2f}x faster)")
    print(f"  largest difference       {(a - b).abs().max().item():.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
