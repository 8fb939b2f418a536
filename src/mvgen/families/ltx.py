"""LTX-Video (Lightricks): a fast DiT over a VAE with 32x spatial and 8x temporal compression,
frames 8k+1, sizes in multiples of 32, T5 text encoder, trained at 24-30 fps."""

from __future__ import annotations

from pathlib import Path

from mvgen.families.base import TINY_TEXT_DIM, Family, byte_tokenizer, decode_video, tiny_t5, to_vae


def finish_latents(pipe, latents, request):
    """LTXPipeline hands back its latents packed into a token sequence (b, tokens, c), the 0.9.5+
    LTXConditionPipeline unpacked (b, c, f, h, w); both normalised. Unpack where needed and undo
    the normalisation, as their decode steps do."""
    if latents.ndim == 3:
        frames = (request.num_frames - 1) // pipe.vae_temporal_compression_ratio + 1
        height = request.height // pipe.vae_spatial_compression_ratio
        width = request.width // pipe.vae_spatial_compression_ratio
        latents = pipe._unpack_latents(
            latents,
            frames,
            height,
            width,
            pipe.transformer_spatial_patch_size,
            pipe.transformer_temporal_patch_size,
        )
    vae = pipe.vae
    return pipe._denormalize_latents(latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)


# LTX 0.9.1+ decodes with a little noise at a small timestep (its VAE is timestep-conditioned);
# these are the values its model cards use.
DECODE_TIMESTEP = 0.05
DECODE_NOISE_SCALE = 0.025


def decode(pipe, latents, seed: int):
    import torch

    latents = to_vae(pipe, latents)
    timestep = None
    if pipe.vae.config.timestep_conditioning:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        noise = to_vae(pipe, torch.randn(latents.shape, generator=generator, dtype=torch.float32))
        latents = (1 - DECODE_NOISE_SCALE) * latents + DECODE_NOISE_SCALE * noise
        timestep = to_vae(pipe, torch.tensor([DECODE_TIMESTEP]))
    return decode_video(pipe, latents, timestep)


def flf_call(start, end, request) -> dict:
    """LTXConditionPipeline (0.9.5+) takes both frames as conditions: the first at frame 0, the
    last at the clip's last frame."""
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

    return {"conditions": [LTXVideoCondition(image=start, frame_index=0),
                           LTXVideoCondition(image=end, frame_index=request.num_frames - 1)]}  # fmt: skip


def call_extras(request) -> dict:
    # LTX conditions its positional embedding on the frame rate of the clip it makes.
    return {"frame_rate": int(round(request.fps))} if request.fps else {}


def build_tiny(dest: Path) -> None:
    """LTX text-to-video and image-to-video with the real VAE geometry (patch 4 and three 2x
    stages: 32x spatial, 8x temporal) at 8 channels a block."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    tokenizer = byte_tokenizer()
    text_encoder = tiny_t5(len(tokenizer))
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        latent_channels=16,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    ).eval()
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=16,
        out_channels=16,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=1,
        caption_channels=TINY_TEXT_DIM,
    )
    parts = dict(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        transformer=transformer,
    )  # fmt: skip
    LTXPipeline(**parts).save_pretrained(dest / "t2v", safe_serialization=True)
    LTXImageToVideoPipeline(**parts).save_pretrained(dest / "i2v", safe_serialization=True)


FAMILY = Family(
    name="ltx",
    label="LTX-Video",
    t2v_pipelines=("LTXPipeline", "LTXConditionPipeline"),  # 0.9.5+: conditions are optional
    i2v_pipelines=("LTXImageToVideoPipeline",),
    defaults=dict(
        fps=24,
        width=768,
        height=512,
        size_multiple=32,
        frame_step=8,
        frame_offset=1,
        max_frames=257,
        steps=40,
        guidance=3.0,
        dtype="bfloat16",
        vram_gb=12.0,
        max_sequence_length=128,
    ),  # fmt: skip
    finish_latents=finish_latents,
    decode=decode,
    call_extras=call_extras,
    build_tiny=build_tiny,
    # end frames and bridges: LTXConditionPipeline on the same weights (a condition at either end)
    tiny_flf="t2v",
    flf_pipeline="LTXConditionPipeline",
    flf_call=flf_call,
)
