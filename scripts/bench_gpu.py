"""Seconds per denoising step and GPU-seconds per output second of a preset's full-size architecture,
with each GPU lever on and off.

    python scripts/bench_gpu.py [--preset wan2.1-t2v-1.3b ltx-video] [--steps 4] [--json OUT.json]
    python scripts/bench_gpu.py --reduced        # CPU smoke run: 2 blocks, a small clip (the tests run it)

No weights are downloaded: the transformer and the VAE are built from the architecture's config
(written below from the published model configs, or diffusers' constructor defaults where those are
the published model's) with random weights, which costs the same compute as the real model; the
modules a model keeps in float32 when loaded (``_keep_in_fp32_modules``) stay so here too. Covered:
Wan 2.1 1.3B, LTX-Video, and the 2026 families: SkyReels-V2 DF 1.3B, Kandinsky 5 Lite, HunyuanVideo
1.5, LTX-2 (its audio stream denoised with the video, as the model does), AnyFlow 14B and Helios
Base (a step is one 33-frame chunk against its history) (one run:
``python scripts/bench_gpu.py``). Text encoding is left out (once per shot, small next to the denoising). A step is
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
    # --- the 2026 families. Where diffusers' constructor defaults are a published model's config (its
    # convention), they are used as they are; otherwise the published values are written out.
    "skyreels-v2-df-1.3b-540p": {  # Wan 2.1 1.3B's shape, diffusion forcing (one window: 97 frames)
        "transformer": ("SkyReelsV2Transformer3DModel", dict(
            num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30, text_dim=4096)),
        "vae": ("AutoencoderKLWan", dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                                         temperal_downsample=[False, True, True])),
        "latent": dict(channels=16, t_ratio=4, s_ratio=8, text_tokens=512, text_dim=4096),
        "vae_fp32": True, "frames": 97,
    },
    "kandinsky5-t2v-lite-5s": {  # Kandinsky 5.0 Video Lite (2B), image channels concatenated (visual_cond)
        "transformer": ("Kandinsky5Transformer3DModel", dict(
            in_visual_dim=16, out_visual_dim=16, in_text_dim=3584, in_text_dim2=768, time_dim=512, model_dim=1792,
            ff_dim=7168, num_text_blocks=2, num_visual_blocks=32, axes_dims=(16, 24, 24), visual_cond=True)),
        "vae": ("AutoencoderKLHunyuanVideo", dict(latent_channels=16, scaling_factor=0.476986)),
        "latent": dict(channels=16, t_ratio=4, s_ratio=8, text_tokens=256, text_dim=3584),
        "vae_fp32": False, "layers_key": "num_visual_blocks",
    },
    "hunyuanvideo-1.5-480p": {  # HunyuanVideo 1.5 (8.3B): the constructor's defaults; text-to-video
        "transformer": ("HunyuanVideo15Transformer3DModel", dict(task_type="t2v")),
        "vae": ("AutoencoderKLHunyuanVideo15", dict()),
        "latent": dict(channels=32, t_ratio=4, s_ratio=16, text_tokens=256, text_dim=3584),
        "vae_fp32": False,
    },
    "ltx-2": {  # LTX-2 (19B): the constructor's defaults; the audio stream is denoised too (and never decoded)
        "transformer": ("LTX2VideoTransformer3DModel", dict()),
        "vae": ("AutoencoderKLLTX2Video", dict(spatial_compression_ratio=32, temporal_compression_ratio=8)),
        "latent": dict(channels=128, t_ratio=8, s_ratio=32, text_tokens=1024, text_dim=3840),
        "vae_fp32": False, "frames": 121,
    },
    "anyflow-wan2.1-t2v-14b": {  # Wan 2.1 14B as a flow map: the constructor's defaults; 4 steps
        "transformer": ("AnyFlowTransformer3DModel", dict()),
        "vae": ("AutoencoderKLWan", dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                                         temperal_downsample=[False, True, True])),
        "latent": dict(channels=16, t_ratio=4, s_ratio=8, text_tokens=512, text_dim=4096),
        "vae_fp32": True,
    },
    "helios-base": {  # Helios Base (14B, Wan 2.1's shape with history memories): the constructor's defaults;
        # a step denoises one 33-frame chunk (9 latent frames) against its 16 + 2 + 2 history frames
        "transformer": ("HeliosTransformer3DModel", dict()),
        "vae": ("AutoencoderKLWan", dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                                         temperal_downsample=[False, True, True])),
        "latent": dict(channels=16, t_ratio=4, s_ratio=8, text_tokens=512, text_dim=4096),
        "vae_fp32": True, "frames": 33,
    },
}  # fmt: skip


def build(name: str, reduced: bool, dtype, device: str):
    import diffusers
    import torch

    arch = ARCH[name]
    cls, cfg = arch["transformer"]
    cfg = dict(cfg)
    if reduced:
        cfg[arch.get("layers_key", "num_layers")] = 2
    torch.manual_seed(0)
    transformer = getattr(diffusers, cls)(**cfg).to(device=device, dtype=dtype).eval()
    for (
        name_,
        module,
    ) in transformer.named_modules():  # as from_pretrained keeps them (Kandinsky's time embedding)
        if any(k in name_.split(".") for k in getattr(transformer, "_keep_in_fp32_modules", None) or ()):
            module.to(torch.float32)
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

    dev, dtype = latents.device, latents.dtype
    ts = torch.full((1,), float(timestep), device=dev)
    t, h, w = shape
    kind = type(transformer).__name__
    if kind == "LTXVideoTransformer3DModel":
        tokens = latents.flatten(2).transpose(1, 2)  # LTX works on packed tokens (patch size 1)
        mask = torch.ones(1, text.shape[1], device=dev, dtype=dtype)
        return transformer(hidden_states=tokens, encoder_hidden_states=text, timestep=ts,
                           encoder_attention_mask=mask, num_frames=t, height=h, width=w,
                           rope_interpolation_scale=(1.0, 1.0, 1.0), return_dict=False)[0]  # fmt: skip
    if kind == "LTX2VideoTransformer3DModel":  # video tokens and the audio's, each with its own text
        cfg = transformer.config
        audio_frames = max(1, round(t * cfg.vae_scale_factors[0] / 24 * cfg.audio_sampling_rate / cfg.audio_hop_length
                                    / cfg.audio_scale_factor))  # fmt: skip
        audio = torch.randn(1, audio_frames, cfg.audio_in_channels, device=dev, dtype=dtype)
        mask = torch.ones(1, text.shape[1], device=dev, dtype=torch.long)
        return transformer(
            hidden_states=latents.flatten(2).transpose(1, 2), audio_hidden_states=audio,
            encoder_hidden_states=text, audio_encoder_hidden_states=text, timestep=ts, sigma=ts / 1000,
            encoder_attention_mask=mask, audio_encoder_attention_mask=mask, num_frames=t, height=h, width=w,
            fps=24.0, audio_num_frames=audio_frames, return_dict=False,
        )[0]  # fmt: skip
    if kind == "Kandinsky5Transformer3DModel":  # channels last, the start-image channels and mask appended
        x = latents.permute(0, 2, 3, 4, 1)
        x = torch.cat([x, torch.zeros_like(x), torch.zeros_like(x[..., :1])], dim=-1)
        cfg = transformer.config
        pooled = torch.randn(1, cfg.in_text_dim2, device=dev, dtype=dtype)
        rope = [
            torch.arange(t, device=dev),
            torch.arange(h // 2, device=dev),
            torch.arange(w // 2, device=dev),
        ]
        return transformer(hidden_states=x, encoder_hidden_states=text, pooled_projections=pooled, timestep=ts.to(dtype),
                           visual_rope_pos=rope, text_rope_pos=torch.arange(text.shape[1], device=dev),
                           scale_factor=(1, 2, 2), sparse_params=None, return_dict=True).sample  # fmt: skip
    if kind == "HunyuanVideo15Transformer3DModel":  # the condition latents and their mask concatenated
        cfg = transformer.config
        x = torch.cat([latents, torch.zeros_like(latents), torch.zeros_like(latents[:, :1])], dim=1)
        mask = torch.ones(1, text.shape[1], device=dev, dtype=torch.long)
        glyph = torch.randn(1, 256, cfg.text_embed_2_dim, device=dev, dtype=dtype)
        image = torch.zeros(1, 729, cfg.image_embed_dim, device=dev, dtype=dtype)
        return transformer(hidden_states=x, timestep=ts.to(dtype), encoder_hidden_states=text, encoder_attention_mask=mask,
                           encoder_hidden_states_2=glyph, encoder_attention_mask_2=torch.ones(1, 256, device=dev, dtype=torch.long),
                           image_embeds=image, return_dict=False)[0]  # fmt: skip
    if kind == "SkyReelsV2Transformer3DModel":  # diffusion forcing: a noise level per latent frame
        return transformer(hidden_states=latents, timestep=ts.expand(1, t), encoder_hidden_states=text,
                           enable_diffusion_forcing=True, fps=[1], return_dict=False)[0]  # fmt: skip
    if kind == "HeliosTransformer3DModel":  # one chunk against its long, mid and short history
        idx = torch.arange(1 + 16 + 2 + 1 + t, device=dev).split([1, 16, 2, 1, t])
        history = {n: torch.zeros(*latents.shape[:2], k, h, w, device=dev, dtype=dtype)
                   for n, k in (("long", 16), ("mid", 2), ("short", 2))}  # fmt: skip
        return transformer(
            hidden_states=latents, timestep=ts, encoder_hidden_states=text, indices_hidden_states=idx[4][None],
            indices_latents_history_short=torch.cat([idx[0], idx[3]])[None], indices_latents_history_mid=idx[2][None],
            indices_latents_history_long=idx[1][None], latents_history_short=history["short"],
            latents_history_mid=history["mid"], latents_history_long=history["long"], return_dict=False,
        )[0]  # fmt: skip
    if kind == "AnyFlowTransformer3DModel":  # a flow map: the step's start and target times
        x, times = latents.transpose(1, 2), ts.expand(1, t)  # frames first, a time per frame
        return transformer(hidden_states=x, timestep=times, r_timestep=times * 0.75, encoder_hidden_states=text,
                           return_dict=False)[0]  # fmt: skip
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
        (64, 64, 9)
        if args.reduced
        else (preset.width, preset.height, args.frames or ARCH[name].get("frames", preset.max_frames))
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
        if name.startswith("ltx") and getattr(vae.config, "timestep_conditioning", False):
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
