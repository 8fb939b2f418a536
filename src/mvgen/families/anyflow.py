"""AnyFlow (NVIDIA): Wan 2.1 distilled into a flow map, a model that jumps from any noise level to
any lower one, so one checkpoint renders in 1, 2, 4 or 8 steps with guidance folded into its weights
(the few-step family: 4 steps by default). Wan's VAE and UMT5, frames 4k+1, sizes in multiples of 16,
16 fps. Text-to-video only: no image-to-video sibling in diffusers, so chains and stills are refused
on it with the presets that can."""

from __future__ import annotations

from pathlib import Path

from mvgen.families import wan
from mvgen.families.base import Family


def build_tiny(dest: Path) -> None:
    """The trained tiny Wan as a flow map: its transformer's weights in AnyFlow's, with the gate on
    the second (target-time) embedding at 0, so each step takes the trained velocity; AnyFlow's
    Euler flow-map scheduler."""
    from diffusers import AnyFlowPipeline, AnyFlowTransformer3DModel, FlowMapEulerDiscreteScheduler

    transformer, missing = wan.trained_transformer_as(AnyFlowTransformer3DModel, gate_value=0.0)
    assert all(k.startswith("condition_embedder.delta_embedder.") for k in missing), missing
    AnyFlowPipeline(
        **wan.tiny_shared_parts(), transformer=transformer, scheduler=FlowMapEulerDiscreteScheduler(shift=3.0)
    ).save_pretrained(dest / "t2v", safe_serialization=True)


FAMILY = Family(
    name="anyflow",
    label="AnyFlow",
    t2v_pipelines=("AnyFlowPipeline",),
    i2v_pipelines=(),
    defaults={**wan.FAMILY.defaults, "steps": 4, "guidance": 1.0, "vram_gb": 40.0},  # Wan 2.1 14B's shape
    finish_latents=wan.finish_latents,
    decode=wan.decode,
    build_tiny=build_tiny,
    tiny_i2v=False,
    tiny_weights=wan.TINY_WEIGHTS,
    vae_fp32=True,
    step_caches=(),  # diffusers' cache hooks do not know its blocks (diffusers 0.42)
)
