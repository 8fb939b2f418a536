"""CogVideoX (THUDM/Zhipu): an expert-transformer DiT over a 3D VAE with 8x spatial and 4x
temporal compression, frames 8k+1 (1.5: 16k+1, padded to whole temporal patches), sizes in multiples of
16, T5 text encoder, 8 fps (1.5: 16 fps)."""

from __future__ import annotations

from pathlib import Path

from mvgen.families.base import TINY_TEXT_DIM, Family, byte_tokenizer, decode_video, tiny_t5, to_vae


def finish_latents(pipe, latents, request):
    """CogVideoXPipeline returns (b, f, c, h, w); 1.5 checkpoints (temporal patch 2) pad the latent
    frames at the front to a whole patch, which its decode drops: drop them here too."""
    patch_t = pipe.transformer.config.patch_size_t
    frames = (request.num_frames - 1) // pipe.vae_scale_factor_temporal + 1
    if patch_t is not None and frames % patch_t:
        latents = latents[:, patch_t - frames % patch_t :]
    return latents


def decode(pipe, latents, seed: int):  # noqa: ARG001
    return decode_video(pipe, to_vae(pipe, latents).permute(0, 2, 1, 3, 4) / pipe.vae_scaling_factor_image)


def build_tiny(dest: Path) -> None:
    """CogVideoX text-to-video and image-to-video (the I2V transformer takes the image latents as
    extra input channels), 8x/4x VAE at 8 channels a block, 3D rotary embeddings as in 5B/1.5."""
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDPMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    tokenizer = byte_tokenizer()
    text_encoder = tiny_t5(len(tokenizer))
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    ).eval()

    def transformer(in_channels: int):
        torch.manual_seed(0)
        return CogVideoXTransformer3DModel(
            num_attention_heads=2,
            attention_head_dim=16,  # the 3D rotary embedding splits it 4/6/6 over t/h/w
            in_channels=in_channels,
            out_channels=4,
            time_embed_dim=4,
            text_embed_dim=TINY_TEXT_DIM,
            num_layers=1,
            sample_width=32,
            sample_height=20,
            sample_frames=9,
            patch_size=2,
            temporal_compression_ratio=4,
            max_text_seq_length=64,
            use_rotary_positional_embeddings=True,
        )

    scheduler = CogVideoXDPMScheduler(timestep_spacing="trailing")
    parts = dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler)
    CogVideoXPipeline(**parts, transformer=transformer(4)).save_pretrained(
        dest / "t2v", safe_serialization=True
    )
    CogVideoXImageToVideoPipeline(**parts, transformer=transformer(8)).save_pretrained(
        dest / "i2v", safe_serialization=True
    )


FAMILY = Family(
    name="cogvideox",
    label="CogVideoX",
    t2v_pipelines=("CogVideoXPipeline",),
    i2v_pipelines=("CogVideoXImageToVideoPipeline",),
    defaults=dict(
        fps=8,
        width=720,
        height=480,
        size_multiple=16,
        # 8k+1: the VAE decodes an odd number of latent frames to 4n+1 frames but an even number
        # to 4n (a 4k+1 count with k odd comes back 3 frames longer than asked)
        frame_step=8,
        frame_offset=1,
        max_frames=49,
        steps=50,
        guidance=6.0,
        dtype="bfloat16",
        vram_gb=18.0,
        max_sequence_length=226,
    ),  # fmt: skip
    finish_latents=finish_latents,
    decode=decode,
    build_tiny=build_tiny,
)
