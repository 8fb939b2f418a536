"""Helios (PKU-YuanGroup): a Wan-based autoregressive model that makes a video in chunks of 9 latent
frames (33 frames), each chunk conditioned on a compressed history of the ones before (short, mid
and long memories), so one run makes a long clip; 24 fps, Wan's VAE and UMT5, sizes in multiples of
16. Each chunk is decoded on its own (its first latent frame starts a new causal run of the VAE), so
a clip is a whole number of chunks: frames 33k. The same pipeline draws from a start image (``image``):
the image-to-video sibling is the same class on the same weights."""

from __future__ import annotations

from pathlib import Path

from mvgen.families import wan
from mvgen.families.base import Family, byte_tokenizer, tiny_t5

CHUNK_LATENTS = 9  # the pipeline's num_latent_frames_per_chunk: 33 frames a chunk


def finish_latents(pipe, latents, request):  # noqa: ARG001 - normalised, like Wan's
    """The chunks' latents: from a start image the pipeline hands back the image's latent frame in
    front of them (the history the first chunk continued), which is not part of the clip."""
    return latents[:, :, latents.shape[2] % CHUNK_LATENTS :]


def call_steps(request) -> int:
    return request.steps * max(1, -(-request.num_frames // (4 * CHUNK_LATENTS - 3)))  # steps per chunk


def decode(pipe, latents, seed: int):
    """Chunk by chunk, as the pipeline decodes: each chunk of 9 latent frames is 33 frames."""
    import numpy as np

    chunks = [latents[:, :, i : i + CHUNK_LATENTS] for i in range(0, latents.shape[2], CHUNK_LATENTS)]
    return np.concatenate([wan.decode(pipe, chunk, seed) for chunk in chunks])


def build_tiny(dest: Path) -> None:
    """The Helios transformer (history memories, three-stage scheduler) at the tiny's scale with
    random weights, the tiny Wan VAE shape and a 2-layer UMT5; saved as text-to-video and again as
    image-to-video (the same pipeline: a real preset loads it once)."""
    import torch
    from diffusers import HeliosPipeline, HeliosScheduler, HeliosTransformer3DModel

    tokenizer = byte_tokenizer()
    torch.manual_seed(0)
    transformer = HeliosTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=64, ffn_dim=64, num_layers=2, rope_dim=(8, 8, 8),
    )  # fmt: skip
    torch.manual_seed(0)
    pipe = HeliosPipeline(
        tokenizer=tokenizer, text_encoder=tiny_t5(len(tokenizer), umt5=True), vae=wan.tiny_vae().eval(),
        scheduler=HeliosScheduler(stages=1), transformer=transformer.eval(),
    )  # fmt: skip
    for role in ("t2v", "i2v"):
        pipe.save_pretrained(dest / role, safe_serialization=True)


FAMILY = Family(
    name="helios",
    label="Helios",
    t2v_pipelines=("HeliosPipeline",),
    i2v_pipelines=("HeliosPipeline",),  # with `image=`
    defaults=dict(
        fps=24,
        width=640,
        height=384,
        size_multiple=16,
        frame_step=33,
        frame_offset=0,
        max_frames=33 * 30,
        steps=50,
        guidance=5.0,
        dtype="bfloat16",
        vram_gb=40.0,
        max_sequence_length=512,
    ),  # fmt: skip
    finish_latents=finish_latents,
    decode=decode,
    build_tiny=build_tiny,
    vae_fp32=True,
    same_weights={"HeliosPipeline": "HeliosPipeline"},
    call_steps=call_steps,
    step_caches=(),
)
