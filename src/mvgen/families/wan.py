"""Wan 2.1 / 2.2 (Alibaba): flow matching, a causal 3D VAE with 8x spatial and 4x temporal
compression, frames 4k+1, sizes in multiples of 16, UMT5 text encoder."""

from __future__ import annotations

from pathlib import Path

from mvgen.families.base import TINY_TEXT_DIM, Family, byte_tokenizer, decode_video, tiny_t5, to_vae


def finish_latents(pipe, latents, request):  # noqa: ARG001 - WanPipeline returns them ready
    return latents


def decode(pipe, latents, seed: int):  # noqa: ARG001
    """Normalised latents (1, z, f, h, w) -> frames: undo the per-channel normalisation, decode."""
    import torch

    config = pipe.vae.config
    mean = to_vae(pipe, torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1))
    std = to_vae(pipe, torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1))
    return decode_video(pipe, to_vae(pipe, latents) * std + mean)


def _transformer(in_channels: int):
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=16,
        text_dim=TINY_TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,
    )


def build_tiny(dest: Path) -> None:
    """Wan 2.1 text-to-video at ``dest/t2v`` and its image-to-video sibling at ``dest/i2v`` (16 noise +
    4 mask + 16 image-latent channels, no CLIP image encoder: the Wan 2.2 layout), sharing the
    tokenizer, text encoder and VAE."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanPipeline

    tokenizer = byte_tokenizer()
    text_encoder = tiny_t5(len(tokenizer), umt5=True)
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    ).eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    parts = dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler)
    torch.manual_seed(0)
    t2v = WanPipeline(**parts, transformer=_transformer(16))
    torch.manual_seed(1)
    i2v = WanImageToVideoPipeline(
        **parts, transformer=_transformer(36), image_encoder=None, image_processor=None
    )
    t2v.save_pretrained(dest / "t2v", safe_serialization=True)
    i2v.save_pretrained(dest / "i2v", safe_serialization=True)


FAMILY = Family(
    name="wan",
    label="Wan",
    t2v_pipelines=("WanPipeline",),
    i2v_pipelines=("WanImageToVideoPipeline",),
    defaults=dict(
        fps=16,
        width=832,
        height=480,
        size_multiple=16,
        frame_step=4,
        frame_offset=1,
        max_frames=81,
        steps=30,
        guidance=5.0,
        dtype="bfloat16",
        vram_gb=8.2,
        max_sequence_length=512,
    ),  # fmt: skip
    finish_latents=finish_latents,
    decode=decode,
    build_tiny=build_tiny,
    vae_fp32=True,
)
