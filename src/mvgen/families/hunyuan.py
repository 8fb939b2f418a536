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


def llava_tokenizer():
    """The byte tokenizer plus Llama 3's chat markers and LLaVA's ``<image>`` as single tokens, a
    begin-of-text token in front, and "system" and a blank line as words: the image-to-video
    pipeline's prompt template expects ``<image>`` at token 5 and finds the assistant's turn by its
    ``<|end_header_id|>``. (Its long system text is cut to the pipeline's token budget, as bytes.)"""
    from tokenizers import AddedToken, processors

    tok = byte_tokenizer()
    marks = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<image>"]
    tok.add_special_tokens({"additional_special_tokens": marks})
    tok.add_tokens([AddedToken(w, special=False, normalized=False) for w in ("system", "\n\n")])
    bos = tok.convert_tokens_to_ids("<|begin_of_text|>")
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)]
    )
    tok.bos_token = "<|begin_of_text|>"
    return tok


def _tiny_llava(tokenizer):
    """LLaVA as HunyuanVideo-I2V uses it: a CLIP vision tower at 336 px in 14-px patches (576 image
    tokens, as the pipeline's template assumes) projected into a 3-layer Llama."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(0)
    vision = CLIPVisionConfig(
        image_size=336, patch_size=14, hidden_size=8, intermediate_size=16, num_attention_heads=2,
        num_hidden_layers=2, projection_dim=8,
    )  # fmt: skip
    text = LlamaConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=1, pad_token_id=0, hidden_size=16, intermediate_size=32,
        num_attention_heads=4, num_key_value_heads=4, num_hidden_layers=3, vocab_size=len(tokenizer),
        max_position_embeddings=2048,
    )  # fmt: skip
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-2, pad_token_id=0,
    )  # fmt: skip
    return LlavaForConditionalGeneration(config).eval()


def build_tiny(dest: Path) -> None:
    """HunyuanVideo text-to-video: the dual-stream transformer (one double, one single block, a
    token refiner, embedded guidance), the 8x/4x causal VAE, a 3-layer Llama and a 2-layer CLIP text
    encoder, each with the byte tokenizer. Image-to-video: the same VAE and CLIP, a transformer that
    takes the image latents concatenated to the noise (``latent_concat``), and a tiny LLaVA."""
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoImageToVideoPipeline,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

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
    torch.manual_seed(1)
    i2v_transformer = HunyuanVideoTransformer3DModel(
        in_channels=2 * 4 + 1, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=False,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4), image_condition_type="latent_concat",
    )  # fmt: skip
    llava_tok = llava_tokenizer()
    HunyuanVideoImageToVideoPipeline(
        transformer=i2v_transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=_tiny_llava(llava_tok), tokenizer=llava_tok, text_encoder_2=clip, tokenizer_2=tokenizer_2,
        image_processor=CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}),
    ).save_pretrained(dest / "i2v", safe_serialization=True)  # fmt: skip


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
    tiny_version=2,
    i2v_dropped_frames=4,  # 2: with the image-to-video sibling (the text-to-video part is unchanged)
)
