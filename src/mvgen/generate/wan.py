"""Wan-family specifics the backend needs beyond the pipeline's own ``__call__``: turning denoised
latents into frames (the last step of WanPipeline, run separately so that the latents can be saved
first and a failed decode retried without re-sampling)."""

from __future__ import annotations

import numpy as np


def decode_latents(pipe, latents) -> np.ndarray:
    """Denoised latents ``(1, z, f, h, w)`` -> float frames ``(f, H, W, 3)`` in [0, 1]."""
    import torch

    vae = pipe.vae
    latents = latents.to(device=next(vae.parameters()).device, dtype=vae.dtype)
    z = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
    with torch.inference_mode():
        video = vae.decode(latents / inv_std + mean, return_dict=False)[0]
        frames = pipe.video_processor.postprocess_video(video, output_type="np")
    return np.asarray(frames[0])
