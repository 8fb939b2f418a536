"""HunyuanVideo (Tencent): a 13B dual-stream DiT over a causal 3D VAE with 8x spatial and 4x
temporal compression, frames 4k+1, sizes in multiples of 16, a Llama text encoder plus CLIP, and
guidance distilled into the model (``guidance_scale`` is the embedded guidance)."""

from __future__ import annotations

from pathlib import Path

from mvgen.families.base import Family, byte_tokenizer, decode_video, to_vae


def finish_latents(pipe, latents, request):  # noqa: ARG001 - returned ready, only scaled
    return latents


def decode(pipe, latents, seed: int):  # noqa: ARG001
    return decode_video(pipe, to_vae(pipe, latents) / pipe.vae.config.scaling_factor)


def build_tiny(dest: Path) -> None:
    """HunyuanVideo text-to-video: the dual-stream transformer (one double, one single block, a
    token refiner, embedded guidance), the 8x/4x causal VAE, a 3-layer Llama and a 2-layer CLIP text
    encoder, each with the byte tokenizer. No image-to-video sibling: Hunyuan's needs a LLaVA encoder."""
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    tokenizer, tokenizer_2 = byte_tokenizer(), byte_tokenizer()
    torch.manual_seed(0)
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4),
    )  # fmt: skip
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo(
        latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8, temporal_compression_ratio=4,
        mid_block_add_attention=True,
    ).eval()  # fmt: skip
    torch.manual_seed(0)
    llama = LlamaModel(
        LlamaConfig(
            bos_token_id=0, eos_token_id=1, pad_token_id=0, hidden_size=16, intermediate_size=32,
            num_attention_heads=4, num_key_value_heads=4, num_hidden_layers=3, vocab_size=len(tokenizer),
            max_position_embeddings=1024,
        )
    ).eval()  # fmt: skip
    clip = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0, eos_token_id=1, pad_token_id=0, hidden_size=8, intermediate_size=16,
            num_attention_heads=2, num_hidden_layers=2, vocab_size=len(tokenizer_2), projection_dim=8,
            max_position_embeddings=77,
        )
    ).eval()  # fmt: skip
    HunyuanVideoPipeline(
        transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=llama, tokenizer=tokenizer, text_encoder_2=clip, tokenizer_2=tokenizer_2,
    ).save_pretrained(dest / "t2v", safe_serialization=True)  # fmt: skip


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
    build_tiny=build_tiny,
    tiny_i2v=False,
)
