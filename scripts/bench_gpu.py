"""Seconds per denoising step and GPU-seconds per output second of a preset's full-size architecture,
with each GPU lever on and off.

    python scripts/bench_gpu.py [--preset wan2.1-t2v-1.3b ltx-video] [--steps 4] [--json OUT.json]
    python scripts/bench_gpu.py --reduced        # CPU smoke run: 2 blocks, a small clip (the tests run it)

No weights are downloaded: the transformer and the VAE are built from the architecture's config
(written below from the published model configs) with random weights, which costs the same compute
as the real model. Text encoding is left out (once per shot, small next to the denoising). A step is
what the pipelines do per step with classifier-free guidance: two transformer passes (with and without
the prompt). GPU-seconds per output second = (steps x step + VAE decode) / (frames / fps).

Levers measured one at a time against the baseline (float32, PyTorch SDPA, no compile, no cache):

* ``bf16``: weights and activations in bfloat16 (the VAE of a family that needs float32 stays so);
* ``attention``: the fastest kernel installed (FlashAttention 3, then 2) on top of bf16;
* ``compile``: ``compile_repeated_blocks(fullgraph=True)`` on top of bf16 (CUDA only; the first
  step's compile time is reported apart);
* ``fbc``: First Block Cache at threshold 0.05 on top of bf16 -- with random weights the skip rate
  says nothing about a trained model's, so its figure is reported, not trusted;
* ``final``: every lever the `final` preset uses (bf16 + attention + compile).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

# Published configs (diffusers' `transformer/config.json` / `vae/config.json` of each repo).
ARCH = {
    "wan2.1-t2v-1.3b": {
        "transformer": ("WanTransformer3DModel", dict(
            patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
            out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)),
        "vae": ("AutoencoderKLWan", dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                                         temperal_downsample=[False, True, True])),
        "latent": dict(channels=16, t_ratio=4, s_ratio=8, text_tokens=512, text_dim=4096),
        "vae_fp32": True,
    },
    "ltx-video": {  # LTX-Video 0.9.1 (2B)
        "transformer": ("LTXVideoTransformer3DModel", dict(
            in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32,
            attention_head_dim=64, cross_attention_dim=2048, num_layers=28, caption_channels=4096)),
        "vae": ("AutoencoderKLLTXVideo", dict(
            block_out_channels=(128, 256, 512, 512), decoder_block_out_channels=(256, 512, 1024),
            layers_per_block=(4, 3, 3, 3, 4), decoder_layers_per_block=(5, 6, 7, 8),
            spatio_temporal_scaling=(True, True, True, False), decoder_spatio_temporal_scaling=(True, True, True),
            decoder_inject_noise=(True, True, True, False), upsample_residual=(True, True, True),
            upsample_factor=(2, 2, 2), timestep_conditioning=True, patch_size=4, patch_size_t=1)),
        "latent": dict(channels=128, t_ratio=8, s_ratio=32, text_tokens=128, text_dim=4096),
        "vae_fp32": False,
    },
}  # fmt: skip


def build(name: str, reduced: bool, dtype, device: str):
    import diffusers
    import torch

    arch = ARCH[name]
    cls, cfg = arch["transformer"]
    cfg = dict(cfg)
    if reduced:
        cfg["num_layers"] = 2
    torch.manual_seed(0)
    transformer = getattr(diffusers, cls)(**cfg).to(device=device, dtype=dtype).eval()
    vcls, vcfg = arch["vae"]
    vae_dtype = torch.float32 if arch["vae_fp32"] else dtype
    vae = getattr(diffusers, vcls)(**vcfg).to(device=device, dtype=vae_dtype).eval()
    return transformer, vae


def inputs(name: str, width: int, height: int, frames: int, dtype, device: str):
    import torch

    lat = ARCH[name]["latent"]
    t = (frames - 1) // lat["t_ratio"] + 1
    h, w = height // lat["s_ratio"], width // lat["s_ratio"]
    g = torch.Generator(device="cpu").manual_seed(0)
    latents = torch.randn(1, lat["channels"], t, h, w, generator=g).to(device, dtype)
    text = torch.randn(1, lat["text_tokens"], lat["text_dim"], generator=g).to(device, dtype)
    return latents, text, (t, h, w)


def forward(name: str, transformer, latents, text, timestep, shape):
    """One transformer pass, as the family's pipeline calls it."""
    import torch

    ts = torch.full((1,), float(timestep), device=latents.device)
    if name.startswith("ltx"):
        t, h, w = shape
        tokens = latents.flatten(2).transpose(1, 2)  # LTX works on packed tokens (patch size 1)
        mask = torch.ones(1, text.shape[1], device=latents.device, dtype=latents.dtype)
        return transformer(hidden_states=tokens, encoder_hidden_states=text, timestep=ts,
                           encoder_attention_mask=mask, num_frames=t, height=h, width=w,
                           rope_interpolation_scale=(1.0, 1.0, 1.0), return_dict=False)[0]  # fmt: skip
    return transformer(hidden_states=latents, timestep=ts, encoder_hidden_states=text, return_dict=False)[0]


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def measure(name: str, lever: str, args, device: str) -> dict:
    import torch

    from mvgen.config.presets import all_presets
    from mvgen.generate.levers import ATTENTION_BACKENDS, pick_attention

    preset = all_presets()[name]
    width, height, frames = (
        (64, 64, 9) if args.reduced else (preset.width, preset.height, args.frames or preset.max_frames)
    )
    # bf16 on a GPU; on a CPU only in the reduced smoke run (a full-size bf16 model there is no figure)
    dtype = torch.bfloat16 if lever != "fp32" and (device == "cuda" or args.reduced) else torch.float32
    transformer, vae = build(name, args.reduced, dtype, device)
    notes = []
    if lever in ("attention", "final"):
        chosen = pick_attention("auto", device)
        if chosen != "native":
            transformer.set_attention_backend(ATTENTION_BACKENDS[chosen])
        notes.append(f"attention {chosen}")
    if lever == "fbc":
        from diffusers.hooks import FirstBlockCacheConfig

        transformer.enable_cache(FirstBlockCacheConfig(threshold=0.05))
    compile_s = None
    if lever in ("compile", "final"):
        if device != "cuda":
            return {"preset": name, "lever": lever, "skipped": "torch.compile is measured on CUDA only"}
        transformer.compile_repeated_blocks(fullgraph=True)
    latents, text, shape = inputs(name, width, height, frames, dtype, device)
    timesteps = [1000.0 * (1 - i / args.steps) for i in range(args.steps)]
    step_s = []
    with torch.inference_mode():
        ctx = transformer.cache_context("bench") if lever == "fbc" else None
        if ctx is not None:
            ctx.__enter__()
        try:
            for i, ts in enumerate([timesteps[0], *timesteps]):  # the first pass warms up (and compiles)
                sync(device)
                t0 = time.perf_counter()
                for _ in range(2):  # classifier-free guidance: with and without the prompt
                    forward(name, transformer, latents, text, ts, shape)
                sync(device)
                if i == 0:
                    compile_s = time.perf_counter() - t0
                else:
                    step_s.append(time.perf_counter() - t0)
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
        z = latents.to(vae.dtype)
        sync(device)
        t0 = time.perf_counter()
        if name.startswith("ltx"):
            vae.decode(z, temb=torch.zeros(1, device=device, dtype=vae.dtype), return_dict=False)
        else:
            vae.decode(z, return_dict=False)
        sync(device)
        decode_s = time.perf_counter() - t0
    steps = args.steps if args.reduced else preset.steps
    per_step = statistics.median(step_s)
    output_s = frames / preset.fps
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    return {
        "preset": name, "lever": lever, "dtype": str(dtype).replace("torch.", ""), "size": [width, height],
        "frames": frames, "fps": preset.fps, "steps": steps, "step_s": round(per_step, 4),
        "decode_s": round(decode_s, 3), "first_step_s": round(compile_s or 0.0, 3),
        "gpu_s_per_output_s": round((steps * per_step + decode_s) / output_s, 3),
        "peak_gib": round(peak, 2) if peak is not None else None, "notes": notes,
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", nargs="+", default=list(ARCH))
    ap.add_argument("--levers", nargs="+", default=["fp32", "bf16", "attention", "compile", "fbc", "final"])
    ap.add_argument("--steps", type=int, default=4, help="steps timed (the figure uses the preset's count)")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--reduced", action="store_true", help="2 blocks, 64x64, 9 frames: a CPU smoke run")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = ap.parse_args()
    import torch
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # "modules that should be kept in float32" per build
    device = "cuda" if torch.cuda.is_available() else "cpu"
    where = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"bench_gpu on {where} (torch {torch.__version__}){' reduced' if args.reduced else ''}")
    rows = []
    for name in args.preset:
        if name not in ARCH:
            print(f"no architecture for {name!r}; known: {', '.join(ARCH)}", file=sys.stderr)
            return 2
        for lever in args.levers:
            row = measure(name, lever, args, device)
            rows.append(row)
            if "skipped" in row:
                print(f"  {name:18s} {lever:9s} skipped: {row['skipped']}")
                continue
            print(f"  {name:18s} {lever:9s} {row['dtype']:8s} step {row['step_s']:8.3f} s  decode {row['decode_s']:7.2f} s"
                  f"  -> {row['gpu_s_per_output_s']:8.2f} GPU-s per output s"
                  + (f"  peak {row['peak_gib']} GiB" if row["peak_gib"] else "")
                  + (f"  first step {row['first_step_s']:.1f} s" if lever in ("compile", "final") else ""), flush=True)  # fmt: skip
            if device == "cuda":
                torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps({"device": where, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
