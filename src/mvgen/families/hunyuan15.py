"""HunyuanVideo 1.5 (Tencent): an 8.3B DiT over a VAE with 16x spatial and 4x temporal compression
(32 channels; frames 4k+1, sizes in multiples of 16), Qwen2.5-VL plus a ByT5 glyph encoder for text
in the picture, 480p and 720p models with step-distilled variants. Guidance goes through the
pipeline's guider; the image-to-video model sizes its clip from the start image's resolution bucket
(mvgen resizes its frames to the plan's size) and reads the image with a SigLIP encoder."""

from __future__ import annotations

from pathlib import Path

from mvgen.families.base import Family, chat_word_tokenizer, decode_video, lead_to, to_vae


def finish_latents(pipe, latents, request):  # noqa: ARG001 - returned unpacked, scaled
    return latents


def decode(pipe, latents, seed: int):  # noqa: ARG001
    return decode_video(pipe, to_vae(pipe, latents) / pipe.vae.config.scaling_factor)


def adapt_call(pipe, kwargs: dict, request) -> dict:  # noqa: ARG001
    """The guidance scale is the guider's (classifier-free guidance, off at 1)."""
    scale = kwargs.pop("guidance_scale", None)
    if (
        scale is not None
        and getattr(pipe, "guider", None) is not None
        and pipe.guider.guidance_scale != scale
    ):
        pipe.guider = pipe.guider.new(guidance_scale=scale)
    return kwargs


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _qwen_tokenizer(system: str, crop_start: int):
    """The tiny models' word tokenizer with a chat template of Qwen's form, the system turn
    ``crop_start`` tokens long (as Qwen's tokenizer counts it): the pipeline crops it off by position."""
    tok = chat_word_tokenizer(CHAT_TEMPLATE)
    turn = [{"role": "system", "content": system}, {"role": "user", "content": ""}]
    head = tok.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
    return lead_to(tok, head.split("<|im_start|>user")[0], crop_start, eos=False)


def _tiny_text_encoders(tokenizer):
    import torch
    from transformers import Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    qwen = Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(
        hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        vocab_size=len(tokenizer), rope_theta=1e6,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
    )).eval()  # fmt: skip
    torch.manual_seed(0)
    byt5 = T5EncoderModel(T5Config(vocab_size=384, d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                   relative_attention_num_buckets=8)).eval()  # fmt: skip
    return qwen, byt5


def build_tiny(dest: Path) -> None:
    """Text-to-video and image-to-video (image latents and a SigLIP image embedding concatenated,
    ``task_type="i2v"``): the 16x/4x VAE at 8 channels a block, a 2-layer Qwen2.5-VL text model, a
    one-layer ByT5 and a one-layer SigLIP."""
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15ImageToVideoPipeline,
        HunyuanVideo15Pipeline,
        HunyuanVideo15Transformer3DModel,
    )
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import ByT5Tokenizer, SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo15(
        latent_channels=4, block_out_channels=(8, 8, 8, 8, 8), layers_per_block=1, spatial_compression_ratio=16,
        temporal_compression_ratio=4, downsample_match_channel=False, upsample_match_channel=False,
    ).eval()  # fmt: skip
    probe = HunyuanVideo15Pipeline(None, None, None, vae, None, None, None, None)  # its prompt template
    tokenizer = _qwen_tokenizer(probe.system_message, probe.prompt_template_encode_start_idx)
    qwen, byt5 = _tiny_text_encoders(tokenizer)
    common = dict(text_encoder=qwen, tokenizer=tokenizer, vae=vae, text_encoder_2=byt5, tokenizer_2=ByT5Tokenizer(),
                  scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), guider=ClassifierFreeGuidance(guidance_scale=6.0))  # fmt: skip
    for task, seed in (("t2v", 0), ("i2v", 1)):
        torch.manual_seed(seed)
        transformer = HunyuanVideo15Transformer3DModel(
            in_channels=2 * 4 + 1, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
            num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16,
            text_embed_2_dim=32, image_embed_dim=12, rope_axes_dim=(2, 2, 4), target_size=64, task_type=task,
        ).eval()  # fmt: skip
        if task == "t2v":
            HunyuanVideo15Pipeline(transformer=transformer, **common).save_pretrained(
                dest / task, safe_serialization=True
            )
            continue
        torch.manual_seed(0)
        siglip = SiglipVisionModel(SiglipVisionConfig(
            hidden_size=12, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8,
        )).eval()  # fmt: skip
        HunyuanVideo15ImageToVideoPipeline(
            transformer=transformer, image_encoder=siglip, feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}),
            **common,
        ).save_pretrained(dest / task, safe_serialization=True)  # fmt: skip


FAMILY = Family(
    name="hunyuan15",
    label="HunyuanVideo 1.5",
    t2v_pipelines=("HunyuanVideo15Pipeline",),
    i2v_pipelines=("HunyuanVideo15ImageToVideoPipeline",),
    defaults=dict(
        fps=24,
        width=848,
        height=480,
        size_multiple=16,
        frame_step=4,
        frame_offset=1,
        max_frames=121,
        steps=50,
        guidance=6.0,
        dtype="bfloat16",
        vram_gb=32.0,
        max_sequence_length=1000,
    ),  # fmt: skip
    finish_latents=finish_latents,
    decode=decode,
    build_tiny=build_tiny,
    adapt_call=adapt_call,
    step_caches=(),  # diffusers' cache hooks do not know its blocks (diffusers 0.42)
)
