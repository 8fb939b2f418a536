"""Wan 2.1 / 2.2 (Alibaba): flow matching, a causal 3D VAE with 8x spatial and 4x temporal
compression, frames 4k+1, sizes in multiples of 16, UMT5 text encoder."""

from __future__ import annotations

from pathlib import Path

from mvgen.families.base import TINY_TEXT_DIM, Family, decode_video, to_vae


def finish_latents(pipe, latents, request):  # noqa: ARG001 - WanPipeline returns them ready
    return latents


def decode(pipe, latents, seed: int):  # noqa: ARG001
    """Normalised latents (1, z, f, h, w) -> frames: undo the per-channel normalisation, decode."""
    import torch

    config = pipe.vae.config
    mean = to_vae(pipe, torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1))
    std = to_vae(pipe, torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1))
    return decode_video(pipe, to_vae(pipe, latents) * std + mean)


# The built-in `tiny` model: the Wan 2.1 architecture at a few MB, trained on CPU by
# scripts/train_tiny.py to paint a named colour field, textured, that pans as the prompt says (left,
# right, up, down; "zoom" not yet: docs/tiny_model.md).
# The architecture lives here (the training script builds from it); the trained weights ship with
# the package and are installed into the cache on first use.
TINY_WEIGHTS = Path(__file__).resolve().parent.parent / "models" / "tiny"


TINY_LAYERS = 3
TINY_SHARED = ("tokenizer", "text_encoder", "vae", "scheduler")  # the parts t2v and i2v share


def tiny_transformer(layers: int = TINY_LAYERS):
    """The tiny transformer, text-to-video or image-to-video (the same shape: the image-to-video
    pipeline runs with ``expand_timesteps``, the image entering as the first latent frame). Two
    heads of 48: Wan's 3D RoPE gives each spatial axis 2 * (head_dim // 6) of a head's dimensions,
    and at 16 that is two frequencies (1 and 0.01 rad a patch) - too few to attend to one place, so
    nothing stays put from frame to frame; at 48 it is eight."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=48,
        in_channels=16,
        out_channels=16,
        text_dim=TINY_TEXT_DIM,
        freq_dim=256,
        ffn_dim=192,
        num_layers=layers,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,
    )


def tiny_vae():
    """A Wan 2.1 causal 3D VAE (8x spatial, 4x temporal, 16 latent channels) at 8-16 channels wide.
    At 4-8 (the narrowest that carries three colour channels through every stage) a frame's mean
    colour came back up to delta E 16 off, too far for an image-to-video first frame (within 8)."""
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True]
    )


def tiny_scheduler():
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)


def tiny_shared_parts() -> dict:
    """``tiny``'s tokenizer, text encoder and VAE (shipped under t2v/), loaded: what a pipeline of
    another family on ``tiny``'s weights (SkyReels-V2, AnyFlow) takes besides its transformer and
    scheduler."""
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, UMT5EncoderModel

    shared = TINY_WEIGHTS / "t2v"
    return {
        "tokenizer": AutoTokenizer.from_pretrained(shared / "tokenizer"),
        "text_encoder": UMT5EncoderModel.from_pretrained(shared / "text_encoder"),
        "vae": AutoencoderKLWan.from_pretrained(shared / "vae"),
    }


def trained_transformer_as(cls, role: str = "t2v", **config):
    """``tiny``'s trained transformer (``role``: t2v or i2v) as a ``cls`` of the same architecture:
    the config entries ``cls`` takes (and ``config``), the weights loaded as they are. Returns the
    model and the names of the parameters it has that ``tiny``'s has not (left as initialised, seeded)."""
    import inspect

    import torch
    from diffusers import WanTransformer3DModel

    trained = WanTransformer3DModel.from_pretrained(TINY_WEIGHTS / role / "transformer")
    takes = inspect.signature(cls.__init__).parameters
    torch.manual_seed(0)
    model = cls(**{k: v for k, v in trained.config.items() if k in takes}, **config)
    missing, unexpected = model.load_state_dict(trained.state_dict(), strict=False)
    if unexpected:
        raise ValueError(f"{cls.__name__} has no place for tiny's {', '.join(unexpected)}")
    return model.eval(), missing


def install_shipped(folders: list[tuple[Path, Path]], shared: Path, *, name: str, script: str) -> None:
    """Shipped trained pipeline folders copied whole (``(source, dest)`` pairs), with the parts the
    tiny models share (``TINY_SHARED``, held once in the package under ``shared``) copied into each
    that lacks them. ``name`` and ``script`` say what is missing and what retrains it."""
    import shutil

    from mvgen.errors import SetupError

    source = next((src for src, _ in folders if not (src / "model_index.json").is_file()), None)
    if source is not None:
        raise SetupError(
            f"the {name}'s weights are missing from the installed package ({source})",
            hint=f"reinstall mvgen (pip install --force-reinstall mvgen), or retrain them: python {script}",
        )
    for src, dest in folders:
        shutil.copytree(src, dest)
        for part in TINY_SHARED:
            if not (dest / part).exists():
                shutil.copytree(shared / part, dest / part)


def install_tiny(dest: Path, source: Path = TINY_WEIGHTS) -> None:
    """The shipped trained weights as three complete pipeline folders: ``dest/t2v``, ``dest/i2v``
    and ``dest/flf`` (first and last frame: ``scripts/train_tiny_flf.py``); the package holds the
    shared tokenizer, text encoder, VAE and scheduler once, under t2v/."""
    install_shipped([(source / part, dest / part) for part in ("t2v", "i2v", "flf")], source / "t2v",
                    name="tiny model", script="scripts/train_tiny.py (flf/: scripts/train_tiny_flf.py)")  # fmt: skip


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
    build_tiny=install_tiny,
    tiny_flf="flf",
    flf_pipeline="WanImageToVideoPipeline",  # with `last_image` (Wan 2.1 FLF2V, Wan 2.2 A14B I2V)
    tiny_version=2,
    tiny_weights=TINY_WEIGHTS,
    vae_fp32=True,
)
