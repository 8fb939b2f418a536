"""Wan 2.1 VACE (Alibaba): the Wan architecture with a second stream of "context" blocks that read
conditions beside the noise: reference images (a character, a place, a prop: each one becomes a
latent frame in front of the clip, its identity carried into every frame), and a video with a mask
(frames to keep and frames to generate). mvgen gives it a cast's pictures as reference images
(``WanVACEPipeline(reference_images=...)``). The rules are Wan's: frames 4k+1, sizes in multiples
of 16, the same VAE and text encoder.

With ``output_type="latent"`` the pipeline returns the reference frames' latents in front of the
clip's (its own decode drops them): ``finish_latents`` drops them before they are saved."""

from __future__ import annotations

from pathlib import Path

from mvgen.families.base import Family
from mvgen.families.wan import FAMILY as WAN
from mvgen.families.wan import TINY_LAYERS, TINY_WEIGHTS, decode, install_shipped, tiny_transformer


def finish_latents(pipe, latents, request):  # noqa: ARG001
    """The clip's latents without the reference images' frames in front."""
    return latents[:, :, len(request.references) :]


def call_extras(request) -> dict:
    """The cast's pictures as VACE reference images (PIL, at their own size: the pipeline fits each
    into the frame on a white canvas)."""
    if not request.references:
        return {}
    from PIL import Image

    return {"reference_images": [Image.fromarray(p) for p in request.references]}


# `tiny-vace`: the tiny Wan with VACE's context blocks beside its three layers, trained by
# scripts/train_tiny_vace.py (from the tiny text-to-video transformer) to paint the colour of the
# reference picture it is given, whatever colour the prompt names, and the prompt's colour when it is
# given none. Shipped: its transformer and model index; the tokenizer, text encoder, VAE and
# scheduler are the tiny's (copied in when installed).
TINY_VACE_WEIGHTS = TINY_WEIGHTS.parent / "tiny-vace"
TINY_VACE_LAYERS = list(range(TINY_LAYERS))  # a context block beside every layer


def tiny_vace_transformer():
    """The tiny transformer's shape with VACE context blocks (96 context channels: the video's
    kept and generated parts' latents, 16 each, and the mask at 8x8 per latent pixel, 64)."""
    from diffusers import WanVACETransformer3DModel

    base = tiny_transformer().config
    keep = ("patch_size", "num_attention_heads", "attention_head_dim", "in_channels", "out_channels",
            "text_dim", "freq_dim", "ffn_dim", "num_layers", "cross_attn_norm", "qk_norm", "rope_max_seq_len")  # fmt: skip
    return WanVACETransformer3DModel(
        **{k: base[k] for k in keep}, vace_layers=TINY_VACE_LAYERS, vace_in_channels=96
    )


def install_tiny_vace(dest: Path, source: Path = TINY_VACE_WEIGHTS) -> None:
    """The shipped trained weights as a complete pipeline folder ``dest/t2v`` (the tiny's shared
    parts copied in beside the VACE transformer)."""
    install_shipped([(source, dest / "t2v")], TINY_WEIGHTS / "t2v", name="tiny VACE model",
                    script="scripts/train_tiny_vace.py")  # fmt: skip


FAMILY = Family(
    name="wan-vace",
    label="Wan VACE",
    t2v_pipelines=("WanVACEPipeline",),
    i2v_pipelines=(),
    defaults=dict(WAN.defaults),
    finish_latents=finish_latents,
    decode=decode,
    call_extras=call_extras,
    build_tiny=install_tiny_vace,
    tiny_i2v=False,
    tiny_weights=TINY_VACE_WEIGHTS,
    tiny_shares=(TINY_WEIGHTS,),
    references="vace",
    vae_fp32=True,
)
