"""Automatic scores for the takes of a shot: which seed gave the most usable clip.

The measures are the faults an editor throws a take away for, computed on a small greyscale copy of
the clip (cheap, deterministic): brightness **flicker** (the frame-to-frame jitter of the mean level
that a smooth fade or camera move does not have), **black** frames, **frozen** frames (no change from
the frame before), and the amount of **motion** (a still picture is a weak shot, but a storm of noise
is worse). Where an image-text model (CLIP) is available locally, **prompt match** is the cosine
similarity of the middle frame to the prompt.

A shot with cast members who have pictures also gets an **identity** score, 0..1: how much its
frames look like those pictures. With ``MVGEN_SCORE_MODEL`` it is the cosine similarity of the
image model's embeddings (CLIP); without one, a documented fallback in CIELAB over the whole frame:
0.7 x colour (the overlap of the two pictures' L*a*b* histograms, 6 x 8 x 8 bins) + 0.3 x structure
(the correlation of their lightness at 16 x 16, the picture fitted to the frame by cover). It sees
a palette and a layout, not a face: a look-alike in other clothes scores low, a stranger in the same
red coat high. Each member's likeness is that of their best picture, over a quarter, the middle and
three quarters of the clip; a shot's is the mean over its members.

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
IDENTITY_WEIGHT = 2.0  # the identity score (0..1) counts as much as prompt match
IDENTITY_SIDE = 128  # pictures are compared at most this wide or high


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
    if metrics.get("identity") is not None:
        value += IDENTITY_WEIGHT * metrics["identity"]
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


def score_take(
    frames: np.ndarray, prompt: str, references: list[tuple[str, np.ndarray]] | None = None
) -> dict[str, Any]:
    """The metrics of one take and its score (stored in the take's cache entry). ``references``:
    (cast member, picture) pairs the take's identity is scored against."""
    metrics: dict[str, Any] = {k: round(v, 6) for k, v in clip_metrics(frames).items()}
    metrics["prompt_match"] = prompt_match(frames[len(frames) // 2], prompt)
    if references:
        metrics["identity"] = identity(frames, references)
    metrics["score"] = score(metrics)
    return metrics


def thumbnail(picture: np.ndarray, side: int = IDENTITY_SIDE) -> np.ndarray:
    """A picture at most ``side`` pixels wide or high (area resampling), uint8 RGB."""
    from PIL import Image

    h, w = picture.shape[:2]
    if max(h, w) <= side:
        return picture
    scale = side / max(h, w)
    im = Image.fromarray(picture).resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX
    )
    return np.asarray(im)


def identity(frames: np.ndarray, references: list[tuple[str, np.ndarray]]) -> float:
    """How much a clip looks like its cast's pictures, 0..1 (see the module's docstring)."""
    n = len(frames)
    picked = [thumbnail(frames[min(n - 1, i)]) for i in sorted({n // 4, n // 2, (3 * n) // 4})]
    refs = [thumbnail(picture) for _, picture in references]
    likeness = _embedding_likeness(picked, refs)  # (frames, pictures), or None without a model
    if likeness is None:
        likeness = np.array(
            [[0.7 * lab_histogram_overlap(f, r) + 0.3 * _structure(f, r) for r in refs] for f in picked]
        )
    best: dict[str, float] = {}
    for (member, _), value in zip(references, likeness.mean(axis=0), strict=True):
        best[member] = max(best.get(member, 0.0), float(value))
    return round(float(np.mean(list(best.values()))), 6)


LAB_BINS = (6, 8, 8)  # L* 0..100, a* and b* -96..96 (beyond: the end bins)


def lab_histogram_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """The overlap (histogram intersection, 0..1) of two pictures' L*a*b* colour histograms."""
    from mvgen.media.colour import rgb_to_lab

    edges = [np.linspace(0, 100, LAB_BINS[0] + 1), *(np.linspace(-96, 96, k + 1) for k in LAB_BINS[1:])]
    hists = []
    for picture in (a, b):
        lab = rgb_to_lab(picture).reshape(-1, 3)
        lab[:, 1:] = np.clip(lab[:, 1:], -95.9, 95.9)
        h, _ = np.histogramdd(lab, bins=edges)
        hists.append(h / max(h.sum(), 1.0))
    return float(np.minimum(*hists).sum())


def _structure(frame: np.ndarray, ref: np.ndarray, side: int = 16) -> float:
    """The correlation (0..1; below 0 counts as 0) of two pictures' lightness at side x side, the
    reference fitted to the frame's shape by cover (centre crop)."""
    from PIL import Image

    fh, fw = frame.shape[:2]
    rh, rw = ref.shape[:2]
    scale = max(fw / rw, fh / rh)
    cw, ch = min(rw, round(fw / scale)), min(rh, round(fh / scale))
    x0, y0 = (rw - cw) // 2, (rh - ch) // 2
    planes = []
    for picture in (frame, ref[y0 : y0 + ch, x0 : x0 + cw]):
        im = (
            Image.fromarray(np.ascontiguousarray(picture))
            .convert("L")
            .resize((side, side), Image.Resampling.BOX)
        )
        v = np.asarray(im, dtype=np.float64).ravel()
        planes.append(v - v.mean())
    norm = float(np.linalg.norm(planes[0]) * np.linalg.norm(planes[1]))
    return max(0.0, float(planes[0] @ planes[1]) / norm) if norm > 1e-6 else 0.0


def _embedding_likeness(frames: list[np.ndarray], refs: list[np.ndarray]) -> np.ndarray | None:
    """Cosine similarities (frames x pictures, below 0 counted as 0) of the pictures' embeddings under
    MVGEN_SCORE_MODEL's image model, each picture embedded once; None without that model."""
    spec = os.environ.get(SCORE_MODEL_ENV)
    loaded = _prompt_model(spec) if spec else None
    if loaded is None:
        return None
    import torch

    model, processor = loaded
    inputs = processor(images=[*frames, *refs], return_tensors="pt")
    with torch.no_grad():
        emb = model.get_image_features(**inputs)
    emb = getattr(emb, "pooler_output", emb)  # transformers 5 returns the projected output in a record
    emb = emb / emb.norm(dim=-1, keepdim=True)
    return (emb[: len(frames)] @ emb[len(frames) :].T).clamp(min=0.0).double().numpy()


def best_take(scores: list[float]) -> int:
    """Index of the best score; the earliest take wins a tie."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))
