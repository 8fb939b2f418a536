"""LTX-2 (Lightricks, 2.0 / 2.3 / 2.5): one DiT that makes video and its audio together, over a VAE
with 32x spatial and 8x temporal compression (frames 8k+1, sizes in multiples of 32), a Gemma 3 text
encoder read through connectors, and a distilled few-step checkpoint. The audio it generates is
discarded without being decoded (the song is the soundtrack): mvgen asks for latents, keeps the
video's and never runs the audio VAE or the vocoder. Start frames go through its image-to-video
pipeline; end frames and bridges through its condition pipeline on the same weights."""

from __future__ import annotations

from pathlib import Path

from mvgen.families import ltx
from mvgen.families.base import Family, byte_tokenizer, decode_video, to_vae


def finish_latents(pipe, latents, request):  # noqa: ARG001 - unpacked and de-normalised already
    return latents


def decode(pipe, latents, seed: int):
    """LTX-2's VAE decodes with LTX's timestep conditioning where its config has it; without, plain."""
    if pipe.vae.config.timestep_conditioning:
        return ltx.decode(pipe, latents, seed)
    return decode_video(pipe, to_vae(pipe, latents))


def call_extras(request) -> dict:
    # LTX-2 conditions on the frame rate of the clip it makes; no prompt enhancement (the shot's
    # prompt is what it reads, so a clip's key names its pixels).
    extras = {"enable_prompt_enhancement": False}
    if request.fps:
        extras["frame_rate"] = float(request.fps)
    return extras


def flf_call(start, end, request) -> dict:
    """LTX2ConditionPipeline takes both frames as conditions: at frame 0 and at the clip's last."""
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

    return {"conditions": [LTX2VideoCondition(frames=start, index=0),
                           LTX2VideoCondition(frames=end, index=request.num_frames - 1)]}  # fmt: skip


def _tiny_gemma(vocab_size: int):
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    torch.manual_seed(0)
    config = Gemma3Config(
        text_config=dict(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8, sliding_window=64,
                         max_position_embeddings=1024, pad_token_id=0, eos_token_id=1, bos_token_id=0),
        vision_config=dict(hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                           image_size=28, patch_size=14),
        mm_tokens_per_image=4, boi_token_index=0, eoi_token_index=1, image_token_index=2,
    )  # fmt: skip
    return Gemma3ForConditionalGeneration(config).eval()


def _tiny_audio(sample_rate: int = 16000):
    import torch
    from diffusers import AutoencoderKLLTX2Audio
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, attn_resolutions=None, in_channels=2,
        resolution=32, latent_channels=2, norm_type="pixel", causality_axis="height", dropout=0.0,
        mid_block_add_attention=False, sample_rate=sample_rate, mel_hop_length=160, is_causal=True, mel_bins=8,
    ).eval()  # fmt: skip
    vocoder = LTX2Vocoder(
        in_channels=2 * 8, hidden_channels=8, out_channels=2, upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2],
        resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]], leaky_relu_negative_slope=0.1,
        output_sampling_rate=sample_rate,
    ).eval()  # fmt: skip
    return audio_vae, vocoder


def build_tiny(dest: Path) -> None:
    """Text-to-video and image-to-video (the same weights; the condition pipeline for end frames
    loads the text-to-video folder): the real VAE geometry (patch 4, spatial then temporal then two
    spatio-temporal stages: 32x, 8x) at 8 channels a block (zero-padded: a tiny render can be one
    latent pixel high, too small for reflection), a 2-layer Gemma 3, the audio VAE and
    vocoder the pipeline needs to exist (never run by mvgen)."""
    import torch
    from diffusers import (
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2ImageToVideoPipeline,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors

    tokenizer = byte_tokenizer()
    gemma = _tiny_gemma(len(tokenizer))
    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(
        latent_channels=8, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1), upsample_residual=(False,) * 3, upsample_factor=(1, 1, 1),
        spatial_compression_ratio=32, temporal_compression_ratio=8, decoder_spatial_padding_mode="zeros",
    ).eval()  # fmt: skip
    torch.manual_seed(0)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2,
        audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=1, qk_norm="rms_norm_across_heads",
        caption_channels=16, rope_double_precision=False, rope_type="split",
    )  # fmt: skip
    torch.manual_seed(0)
    connectors = LTX2TextConnectors(
        caption_channels=16, text_proj_in_factor=gemma.config.text_config.num_hidden_layers + 1,
        video_connector_num_attention_heads=2, video_connector_attention_head_dim=8, video_connector_num_layers=1,
        video_connector_num_learnable_registers=None, audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None, connector_rope_base_seq_len=32, rope_theta=10000.0,
        rope_double_precision=False, causal_temporal_positioning=False, rope_type="split",
    )  # fmt: skip
    audio_vae, vocoder = _tiny_audio()
    parts = dict(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, audio_vae=audio_vae, text_encoder=gemma,
        tokenizer=tokenizer, connectors=connectors, transformer=transformer, vocoder=vocoder,
    )  # fmt: skip
    LTX2Pipeline(**parts).save_pretrained(dest / "t2v", safe_serialization=True)
    LTX2ImageToVideoPipeline(**parts).save_pretrained(dest / "i2v", safe_serialization=True)


FAMILY = Family(
    name="ltx2",
    label="LTX-2",
    t2v_pipelines=("LTX2Pipeline", "LTX2ConditionPipeline"),
    i2v_pipelines=("LTX2ImageToVideoPipeline",),
    # LTX-Video's geometry, frame rule and guidance; its own steps, size in memory and prompt length
    defaults={**ltx.FAMILY.defaults, "steps": 30, "vram_gb": 48.0, "max_sequence_length": 1024},
    finish_latents=finish_latents,
    decode=decode,
    call_extras=call_extras,
    build_tiny=build_tiny,
    tiny_flf="t2v",
    flf_pipeline="LTX2ConditionPipeline",
    flf_call=flf_call,
    step_caches=(),  # diffusers' cache hooks do not know its blocks (diffusers 0.42)
)
