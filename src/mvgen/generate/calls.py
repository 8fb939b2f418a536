"""One pipeline call, whatever the family's pipeline takes: mvgen builds one set of keyword arguments
(prompt, size, frames, steps, guidance, seed, latents out, a per-step callback); the family adapts
them (``Family.adapt_call``); what the pipeline's ``__call__`` does not take is left out; and where it
has no per-step callback (HunyuanVideo 1.5), the steps are counted at its scheduler."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("mvgen")


def call_parameters(pipe) -> set[str] | None:
    """The keyword arguments ``pipe.__call__`` takes (None: it takes any)."""
    params = inspect.signature(pipe.__call__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


@contextmanager
def _counting_scheduler_steps(pipe, step_end: Callable):
    """``step_end`` after each of the scheduler's steps, for a pipeline with no step callback."""
    scheduler = pipe.scheduler
    original = scheduler.step

    def step(*args, **kwargs):
        out = original(*args, **kwargs)
        step_end(pipe, None, None, {})  # (step_end counts the steps itself)
        return out

    scheduler.step = step
    try:
        yield
    finally:
        del scheduler.step  # the class's own method again


def run_pipeline(pipe, family, request, kwargs: dict[str, Any], on_step: Callable[[int, int], None]):
    """``pipe(**kwargs)`` adapted to the family and to the pipeline's signature, reporting each
    denoising step to ``on_step(done, total)`` (``family.call_steps``: a diffusion-forcing run
    makes its steps once per window)."""
    total = max(1, family.call_steps(request))
    done = [0]

    def step_end(pipe_, i, t, tensors):  # diffusers' callback_on_step_end signature
        done[0] += 1
        on_step(min(done[0], total), total)
        return {}

    kwargs = family.adapt_call(pipe, {**kwargs, "callback_on_step_end": step_end}, request)
    accepted = call_parameters(pipe)
    if accepted is not None:
        dropped = sorted(k for k in kwargs if k not in accepted)
        if dropped:
            log.debug("%s takes no %s: left out", type(pipe).__name__, ", ".join(dropped))
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    if "callback_on_step_end" in kwargs:
        return pipe(**kwargs)
    with _counting_scheduler_steps(pipe, step_end):
        return pipe(**kwargs)


def fit_frames(frames, width: int, height: int):
    """Frames (f, h, w, 3) uint8 at ``width`` x ``height``: a pipeline that picks its own size from
    the start image (HunyuanVideo 1.5's image-to-video, from its resolution buckets) is brought to
    the size the plan made the rest at. Where the bucket's aspect differs, the centre is cropped to
    the plan's aspect first, so that nothing is stretched."""
    import numpy as np

    if frames.shape[1:3] == (height, width):
        return frames
    from PIL import Image, ImageOps

    log.debug("fitting frames %sx%s to %sx%s", frames.shape[2], frames.shape[1], width, height)
    return np.stack(
        [np.asarray(ImageOps.fit(Image.fromarray(f), (width, height), Image.LANCZOS)) for f in frames]
    )
