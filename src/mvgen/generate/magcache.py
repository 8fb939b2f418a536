"""MagCache: a step reuses the last step's transformer work while the model's change is predictable.

MagCache (Ma et al., 2025; diffusers' ``MagCacheConfig``) rests on one observation: from one
denoising step to the next, the magnitude of what the transformer adds to its input (the residual of
its block stack) changes by a ratio that depends on the checkpoint, its scheduler and the step count,
hardly on the prompt. With those ratios known, the error of reusing the previous residual can be
accumulated step by step, and a step is skipped while it stays under the threshold (at most
:data:`MAX_SKIP` in a row, never in the first :data:`RETAIN` of the steps).

The ratios are checkpoint data that diffusers does not ship for video models, so mvgen measures them
itself, once per (model, pipeline, steps, guidance, size): one uncached sample of a fixed prompt and
seed at a short length, the ratio of each step's mean per-token residual norm to the previous
step's. They are kept in the cache folder (``magcache/``), so a render measures them at most once and
every later render, on any machine sharing the cache, uses the same ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mvgen.errors import SetupError
from mvgen.files import atomic_write_text, cache_root
from mvgen.generate.base import ShotRequest

log = logging.getLogger(__name__)

MAX_SKIP = 3  # most consecutive steps that reuse the last residual (the paper's K)
RETAIN = 0.2  # the first fifth of the steps always run: the picture's layout is set there
FORMAT = 1  # bumped when the measurement changes, so older ratios are measured again

# The calibration sample: a fixed prompt and seed, so the ratios do not depend on which shot came first.
CALIBRATION_PROMPT = "a city street at dusk, people walking, cars passing, soft light"
CALIBRATION_SEED = 0
CALIBRATION_FRAMES = 17  # about a second: the ratios hardly depend on the length, the cost does


def config(threshold: float, steps: int, ratios: list[float]) -> Any:
    """diffusers' MagCache configuration for a sample of ``steps`` steps."""
    try:
        from diffusers.hooks import MagCacheConfig
    except ImportError:  # diffusers older than MagCache
        import diffusers

        raise SetupError(
            f"generation.cache: magcache needs a diffusers with MagCache (installed: {diffusers.__version__})",
            hint="pip install -U diffusers, or use cache: fbc",
        ) from None
    return MagCacheConfig(
        threshold=threshold, max_skip_steps=MAX_SKIP, retention_ratio=RETAIN, num_inference_steps=steps,
        mag_ratios=list(ratios),
    )  # fmt: skip


def ratios_path(
    identity: dict[str, str], pipeline: str, request: ShotRequest, root: Path | None = None
) -> Path:
    """Where the ratios of this model's ``pipeline`` ("t2v" or its image-to-video sibling "i2v") at
    the request's steps, guidance and size are kept."""
    what = {
        "format": FORMAT, "model": identity.get("id"), "revision": identity.get("revision"),
        "pipeline": pipeline, "steps": request.steps, "guidance": request.guidance,
        "size": [request.width, request.height],
    }  # fmt: skip
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]
    return (root or cache_root()) / "magcache" / f"{digest}.json"


def load(path: Path, steps: int) -> list[float] | None:
    """The kept ratios (one per step), or None when there are none (or they are unreadable)."""
    try:
        ratios = json.loads(path.read_text())["ratios"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(ratios, list) or len(ratios) != steps or not all(isinstance(r, float) for r in ratios):
        return None
    return ratios


def save(path: Path, ratios: list[float], about: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({**about, "ratios": ratios}, indent=1) + "\n")


def calibration_request(request: ShotRequest, frames: int) -> ShotRequest:
    """The calibration sample for ``request``: its size, steps and guidance; a fixed prompt, seed and
    length; a mid-grey start (and end) frame for an image-to-video pipeline; not compiled (the
    render's blocks compile for the step cache once it is on)."""
    import numpy as np

    grey = [None if f is None else np.full_like(f, 128) for f in (request.image, request.last_image)]
    if grey[1] is not None and grey[0] is None:
        grey[0] = grey[1]
    return replace(
        request, shot_id="magcache-calibration", prompt=CALIBRATION_PROMPT, negative="", seed=CALIBRATION_SEED,
        num_frames=frames, image=grey[0], last_image=grey[1], step_cache="none", compile=False,
    )  # fmt: skip


def block_stack(transformer: Any) -> list[Any]:
    """The transformer's blocks in the order diffusers' MagCache hooks walk them (its first block
    is where the residual starts, its last where it ends)."""
    import torch

    try:
        from diffusers.hooks._common import _ALL_TRANSFORMER_BLOCK_IDENTIFIERS as names
    except ImportError:
        names = ("blocks", "transformer_blocks", "single_transformer_blocks", "temporal_transformer_blocks")
    blocks = []
    for name, child in transformer.named_children():
        if name in names and isinstance(child, torch.nn.ModuleList):
            blocks.extend(child)
    return blocks


def measure(transformer: Any, run: Callable[[Callable[[], None]], None]) -> list[float]:
    """Run one sample (``run(end_of_step)``, with the step cache off) and return, for each step, the
    mean over tokens of its residual's norm over the previous step's (1.0 for the first step). Under
    classifier-free guidance run as two calls a step, the first call (with the prompt) is measured."""
    import torch

    blocks = block_stack(transformer)
    if not blocks:
        raise SetupError(f"{type(transformer).__name__}: no transformer blocks found for MagCache")
    steps: list[list[torch.Tensor]] = [[]]  # per step, each call's per-token residual norms
    held: list[torch.Tensor] = []

    def before(_module: Any, args: tuple, kwargs: dict) -> None:
        held[:] = [kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]]

    def after(_module: Any, _args: tuple, _kwargs: dict, output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        start = held[0]
        if out.shape != start.shape:  # the last block returned image and text tokens: the image's are last
            out = out[:, -start.shape[1] :]
        steps[-1].append(torch.linalg.vector_norm((out - start).float(), dim=-1))

    handles = [
        blocks[0].register_forward_pre_hook(before, with_kwargs=True),
        blocks[-1].register_forward_hook(after, with_kwargs=True),
    ]
    try:
        run(lambda: steps.append([]))
    finally:
        for handle in handles:
            handle.remove()
    firsts = [calls[0] for calls in steps if calls]
    ratios = [1.0] + [
        float((cur / (prev + 1e-8)).mean()) for prev, cur in zip(firsts, firsts[1:], strict=False)
    ]
    return [round(r, 6) for r in ratios]
