"""Kandinsky 5.0 (Kandinsky Lab): a DiT over HunyuanVideo's causal 3D VAE (8x spatial, 4x temporal,
16 channels; frames 4k+1, sizes in multiples of 16), Qwen2.5-VL plus CLIP text encoders, flow
matching, 24 fps. The Lite models are 2B (5 s and 10 s variants, a 16-step distilled one); the
image-to-video model holds the start image as the clip's first latent frame (``visual_cond``)."""

from __future__ import annotations

from pathlib import Path

from mvgen.families.base import Family, byte_tokenizer, chat_word_tokenizer, decode_video, lead_to, to_vae


def finish_latents(pipe, latents, request):  # noqa: ARG001
    """Kandinsky hands its latents back channels-last, (b, f, h, w, c): to (b, c, f, h, w)."""
    return latents.permute(0, 4, 1, 2, 3)


def decode(pipe, latents, seed: int):  # noqa: ARG001
    return decode_video(pipe, to_vae(pipe, latents) / pipe.vae.config.scaling_factor)


def _qwen_tokenizer(template: str, start: int):
    """The tiny models' word tokenizer, the pipeline's prompt template ``start`` tokens long (as
    Qwen's tokenizer counts it), ``</s>`` after the text."""
    return lead_to(chat_word_tokenizer(), template.split("{}")[0], start, eos=True)


def _tiny_qwen(vocab_size: int):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    text = dict(hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=2, rope_theta=1e6,
                rope_scaling={"mrope_section": [2, 2, 4], "rope_type": "default", "type": "default"})  # fmt: skip
    vision = dict(depth=1, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=32)
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, hidden_size=32, vocab_size=vocab_size,
                              pad_token_id=0, eos_token_id=1, bos_token_id=0)  # fmt: skip
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def _tiny_clip(vocab_size: int):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    return CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=0, hidden_size=16, intermediate_size=16, num_attention_heads=2,
        num_hidden_layers=2, vocab_size=vocab_size, projection_dim=16, max_position_embeddings=77,
    )).eval()  # fmt: skip


def build_tiny(dest: Path) -> None:
    """Text-to-video and image-to-video on one tiny transformer (``visual_cond``: the image-to-video
    pipeline fills the first latent frame and its mask), the HunyuanVideo VAE at 8 channels a block,
    a 2-layer Qwen2.5-VL and a 2-layer CLIP text encoder."""
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        Kandinsky5I2VPipeline,
        Kandinsky5T2VPipeline,
        Kandinsky5Transformer3DModel,
    )

    tokenizer_2 = byte_tokenizer()
    probe = Kandinsky5T2VPipeline(None, None, None, None, None, None, None)  # the prompt template only
    tokenizer = _qwen_tokenizer(probe.prompt_template, probe.prompt_template_encode_start_idx)
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo(
        latent_channels=16, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8, temporal_compression_ratio=4,
        mid_block_add_attention=False,
    ).eval()  # fmt: skip
    torch.manual_seed(0)
    transformer = Kandinsky5Transformer3DModel(
        in_visual_dim=16, in_text_dim=32, in_text_dim2=16, time_dim=16, out_visual_dim=16, patch_size=(1, 2, 2),
        model_dim=32, ff_dim=64, num_text_blocks=1, num_visual_blocks=2, axes_dims=(8, 4, 4), visual_cond=True,
        attention_type="regular",
    )  # fmt: skip
    parts = dict(
        transformer=transformer, vae=vae, text_encoder=_tiny_qwen(len(tokenizer)), tokenizer=tokenizer,
        text_encoder_2=_tiny_clip(len(tokenizer_2)), tokenizer_2=tokenizer_2,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
    )  # fmt: skip
    Kandinsky5T2VPipeline(**parts).save_pretrained(dest / "t2v", safe_serialization=True)
    Kandinsky5I2VPipeline(**parts).save_pretrained(dest / "i2v", safe_serialization=True)


FAMILY = Family(
    name="kandinsky",
    label="Kandinsky 5",
    t2v_pipelines=("Kandinsky5T2VPipeline",),
    i2v_pipelines=("Kandinsky5I2VPipeline",),
    defaults=dict(
        fps=24,
        width=768,
        height=512,
        size_multiple=16,
        frame_step=4,
        frame_offset=1,
        max_frames=121,
        steps=50,
        guidance=5.0,
        dtype="bfloat16",
        vram_gb=30.0,
        max_sequence_length=512,
    ),  # fmt: skip
    finish_latents=finish_latents,
    decode=decode,
    build_tiny=build_tiny,
    step_caches=("magcache",),  # First Block Cache cannot find its blocks' hidden_states (diffusers 0.42)
)
