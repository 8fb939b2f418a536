"""Automatic scores for the takes of a shot: which seed gave the most usable clip.

The measures are the faults an editor throws a take away for, computed on a small greyscale copy of
the clip (cheap, deterministic): brightness **flicker** (the frame-to-frame jitter of the mean level
that a smooth fade or camera move does not have), **black** frames, **frozen** frames (no change from
the frame before), and the amount of **motion** (a still picture is a weak shot, but a storm of noise
is worse). Where an image-text model (CLIP) is available locally, **prompt match** is the cosine
similarity of the middle frame to the prompt.

The score is one number, higher is better; ties go to the earlier take, so the choice is
deterministic for the same clips.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

BLACK_LEVEL = 0.06  # a frame whose mean level (0..1) is below this reads as black
FROZEN_DIFF = 0.002  # mean absolute change (0..1) below which a frame repeats the one before
MOTION_GOOD = 0.03  # mean absolute change per frame at which motion stops adding to the score
MOTION_NOISE = 0.25  # above this, frame-to-frame change is noise rather than motion
SCORE_MODEL_ENV = "MVGEN_SCORE_MODEL"  # a local CLIP folder or a cached hub id, for prompt match


def _grey(frames: np.ndarray, size: int = 64) -> np.ndarray:
    """(f, h, w, 3) uint8 -> (f, <=size, <=size) float32 in 0..1 by striding (no resampling cost)."""
    f, h, w = frames.shape[:3]
    sy, sx = max(1, h // size), max(1, w // size)
    small = frames[:, ::sy, ::sx, :].astype(np.float32) / 255.0
    return small @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def clip_metrics(frames: np.ndarray) -> dict[str, float]:
    """Flicker, black and frozen fractions and motion of a clip, each in 0..1."""
    g = _grey(frames)
    level = g.mean(axis=(1, 2))
    black = float(np.mean(level < BLACK_LEVEL))
    if len(g) < 2:
        return {"flicker": 0.0, "black": black, "frozen": 0.0, "motion": 0.0}
    change = np.abs(np.diff(g, axis=0)).mean(axis=(1, 2))
    frozen = float(np.mean(change < FROZEN_DIFF))
    # Second difference of the mean level: zero for a steady level or a linear fade.
    flicker = float(np.abs(np.diff(level, n=2)).mean()) if len(level) >= 3 else 0.0
    return {"flicker": flicker, "black": black, "frozen": frozen, "motion": float(np.median(change))}


def score(metrics: dict[str, Any]) -> float:
    """One number from a take's metrics (higher is better)."""
    motion = metrics["motion"]
    motion_term = min(motion / MOTION_GOOD, 1.0) - max(0.0, motion - MOTION_NOISE) * 4.0
    value = 0.3 * motion_term - 10.0 * metrics["flicker"] - 1.0 * metrics["black"] - 0.5 * metrics["frozen"]
    if metrics.get("prompt_match") is not None:
        value += 2.0 * metrics["prompt_match"]
    return round(float(value), 6)


@lru_cache(maxsize=2)
def _prompt_model(spec: str):
    """(model, processor) of a locally available CLIP, or None (never downloads)."""
    try:
        from transformers import CLIPModel, CLIPProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model = CLIPModel.from_pretrained(spec, local_files_only=True).eval()
        processor = CLIPProcessor.from_pretrained(spec, local_files_only=True)
        return model, processor
    except Exception as exc:  # noqa: BLE001 - an optional extra: any failure means "not available"
        log.warning("prompt match off: cannot load %s offline: %s", spec, exc)
        return None


def prompt_match(frame: np.ndarray, prompt: str) -> float | None:
    """Cosine similarity of a frame to the prompt under the CLIP named by MVGEN_SCORE_MODEL, or None."""
    spec = os.environ.get(SCORE_MODEL_ENV)
    if not spec:
        return None
    loaded = _prompt_model(spec)
    if loaded is None:
        return None
    import torch

    model, processor = loaded
    inputs = processor(text=[prompt], images=[frame], return_tensors="pt", padding=True, truncation=True)
    with torch.no_grad():
        out = model(**inputs)  # image_embeds / text_embeds: projected and L2-normalised
    return round(float((out.image_embeds * out.text_embeds).sum()), 6)


def score_take(frames: np.ndarray, prompt: str) -> dict[str, Any]:
    """The metrics of one take and its score (stored in the take's cache entry)."""
    metrics: dict[str, Any] = {k: round(v, 6) for k, v in clip_metrics(frames).items()}
    metrics["prompt_match"] = prompt_match(frames[len(frames) // 2], prompt)
    metrics["score"] = score(metrics)
    return metrics


def best_take(scores: list[float]) -> int:
    """Index of the best score; the earliest take wins a tie."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))
