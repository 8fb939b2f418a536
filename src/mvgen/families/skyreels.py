"""SkyReels-V2 (Skywork): the Wan 2.1 architecture (its VAE, UMT5, 8x/4x compression, frames 4k+1,
sizes in multiples of 16) retrained at 24 fps, plus diffusion forcing: every latent frame has its own
noise level, so one run slides a window along the clip, each window continuing from the clean frames
of the one before (``overlap_history``). A shot longer than one window is then one continuous clip,
not chained segments. The image-to-video model (Wan 2.1 style, CLIP image encoder) also takes a last
frame; the diffusion-forcing weights draw from a start frame with their own image-to-video class."""

from __future__ import annotations

from pathlib import Path

from mvgen.families import wan
from mvgen.families.base import Family, sliding_windows, window_overlap

DF_T2V = "SkyReelsV2DiffusionForcingPipeline"
DF_I2V = "SkyReelsV2DiffusionForcingImageToVideoPipeline"
# Noise added to the frames a window continues from (SkyReels-V2's recommended 20 of 1000): keeps a
# long run from copying the previous window's artefacts forward.
ADDNOISE_CONDITION = 20


def adapt_call(pipe, kwargs: dict, request) -> dict:
    """Diffusion forcing: the window and its overlap when the clip is longer than one window, and
    the frame rate (the model conditions on 16 or 24 fps). The image-to-video run is asked for frames
    that fill its last window too: diffusers 0.42's fails on a shorter last window (its step matrix is
    built for a whole one); ``finish_latents`` drops the surplus."""
    name = type(pipe).__name__
    if name not in (DF_T2V, DF_I2V):
        return kwargs
    out = {**kwargs, "fps": int(round(request.fps or 24))}
    window = request.window_frames
    if window and kwargs["num_frames"] > window:
        out.update(base_num_frames=window, overlap_history=window_overlap(window),
                   addnoise_condition=ADDNOISE_CONDITION)  # fmt: skip
        if name == DF_I2V:
            runs = sliding_windows(kwargs["num_frames"], window) - 1
            out["num_frames"] = window + runs * (window - window_overlap(window))
    else:
        out["base_num_frames"] = kwargs["num_frames"]
    return out


def finish_latents(pipe, latents, request):
    """Latents as Wan's, the surplus of a filled last window dropped."""
    return latents[:, :, : (request.num_frames - 1) // pipe.vae_scale_factor_temporal + 1]


def call_steps(request) -> int:
    return request.steps * sliding_windows(request.num_frames, request.window_frames)


def build_tiny(dest: Path) -> None:
    """The trained tiny Wan's weights in SkyReels-V2's diffusion-forcing classes (the transformer's
    weights load as they are: the same architecture): text-to-video in t2v/ from tiny's text-to-video
    transformer, image-to-video in i2v/ from its image-to-video one (trained with a clean first latent
    frame, which is how diffusion forcing holds a start frame)."""
    import diffusers
    from diffusers import SkyReelsV2Transformer3DModel

    shared = wan.tiny_shared_parts()
    for role, cls_name in (("t2v", DF_T2V), ("i2v", DF_I2V)):
        transformer, missing = wan.trained_transformer_as(SkyReelsV2Transformer3DModel, role)
        assert not missing, missing  # the same architecture, every weight tiny's
        pipe = getattr(diffusers, cls_name)(**shared, scheduler=wan.tiny_scheduler(), transformer=transformer)
        pipe.save_pretrained(dest / role, safe_serialization=True)


FAMILY = Family(
    name="skyreels",
    label="SkyReels-V2",
    t2v_pipelines=("SkyReelsV2Pipeline", DF_T2V),
    i2v_pipelines=("SkyReelsV2ImageToVideoPipeline", DF_I2V),
    defaults=dict(
        fps=24,
        width=960,
        height=544,
        size_multiple=16,
        frame_step=4,
        frame_offset=1,
        max_frames=97,
        steps=50,
        guidance=6.0,
        dtype="bfloat16",
        vram_gb=40.0,
        max_sequence_length=512,
    ),  # fmt: skip
    finish_latents=finish_latents,
    decode=wan.decode,
    build_tiny=build_tiny,
    tiny_weights=wan.TINY_WEIGHTS,
    vae_fp32=True,
    # end frames: the image-to-video model's `last_image` (the diffusion-forcing one appends the
    # last frame past the clip instead, so its presets name no first-and-last-frame model)
    flf_pipeline="SkyReelsV2ImageToVideoPipeline",
    same_weights={DF_T2V: DF_I2V},
    adapt_call=adapt_call,
    call_steps=call_steps,
    step_caches=(),  # diffusers' cache hooks do not know its blocks (diffusers 0.42)
)
