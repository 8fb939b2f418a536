"""HunyuanVideo (Tencent): a 13B dual-stream DiT over a causal 3D VAE with 8x spatial and 4x
temporal compression, frames 4k+1, sizes in multiples of 16, a Llama text encoder plus CLIP, and
guidance distilled into the model (``guidance_scale`` is the embedded guidance)."""

from __future__ import annotations

from mvgen.families.base import Family, postprocess, vae_device_dtype


def finish_latents(pipe, latents, request):  # noqa: ARG001 - returned ready, only scaled
    return latents


def decode(pipe, latents, seed: int):  # noqa: ARG001
    import torch

    device, dtype = vae_device_dtype(pipe)
    latents = latents.to(device=device, dtype=dtype) / pipe.vae.config.scaling_factor
    with torch.inference_mode():
        video = pipe.vae.decode(latents, return_dict=False)[0]
    return postprocess(pipe, video)


FAMILY = Family(
    name="hunyuan",
    label="HunyuanVideo",
    t2v_pipelines=("HunyuanVideoPipeline",),
    i2v_pipelines=("HunyuanVideoImageToVideoPipeline",),
    defaults=dict(
        fps=24,
        width=960,
        height=544,
        size_multiple=16,
        frame_step=4,
        frame_offset=1,
        max_frames=129,
        steps=50,
        guidance=6.0,
        dtype="bfloat16",
        vram_gb=45.0,
        max_sequence_length=256,
    ),  # fmt: skip
    finish_latents=finish_latents,
    decode=decode,
)
