"""What a viewer sees in a clip, measured: its named colour, its dominant motion, where it cuts.

These are the built-in ``tiny`` model's vocabulary and the eyes of the test suite. The tiny model is
trained (``scripts/train_tiny.py``) on the synthetic clips made here: a field of one of eight named
colours with a darker shape on it that moves left, right, up or down, grows (zoom in) or stays
still. The measures read any video, though: the nearest named colour of a frame's mean (CIELAB),
the dominant direction of a parametric optical-flow fit (translation plus expansion), and a cut
detector on jumps of the mean colour.
"""

from __future__ import annotations

import numpy as np

from mvgen.media.colour import rgb_to_lab

# The named colours, as sRGB in [0, 1]: what the tiny model paints for each colour word.
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.10, 0.10),
    "orange": (1.00, 0.55, 0.05),
    "yellow": (0.95, 0.90, 0.10),
    "green": (0.10, 0.75, 0.20),
    "cyan": (0.10, 0.85, 0.90),
    "blue": (0.10, 0.20, 0.90),
    "purple": (0.55, 0.15, 0.80),
    "white": (0.95, 0.95, 0.95),
}
COLOURS = tuple(PALETTE)
MOTIONS = ("left", "right", "up", "down", "zoom in", "still")
SHAPE_SHADE = 0.5  # the shape is the field's colour at half brightness

_PALETTE_LAB = rgb_to_lab(np.array([PALETTE[c] for c in COLOURS]) * 255.0)


def nearest_colour(rgb) -> str:
    """The named colour nearest (CIE76) to an sRGB colour given as 0-255 values."""
    lab = rgb_to_lab(np.asarray(rgb, dtype=np.float64).reshape(1, 3))
    return COLOURS[int(np.argmin(np.linalg.norm(_PALETTE_LAB - lab, axis=1)))]


def mean_colour(frames: np.ndarray) -> np.ndarray:
    """The mean sRGB colour (0-255 floats) of a frame (h, w, 3) or clip (f, h, w, 3)."""
    return frames.reshape(-1, 3).astype(np.float64).mean(axis=0)


def dominant_colour(frames: np.ndarray) -> str:
    """The named colour nearest to the mean of a frame or clip."""
    return nearest_colour(mean_colour(frames))


def synthetic_clip(
    colour: str, motion: str, frames: int, height: int, width: int, rng: np.random.Generator
) -> np.ndarray:
    """A clip (frames, height, width, 3) of floats in [0, 1]: a ``colour`` field with a darker disc
    or square that moves as ``motion`` says, over the whole clip (a shape crosses 40 % of the frame,
    or grows from 15 % to 50 % of the frame's short side for ``zoom in``; its size, a quarter to a third
    of the short side, is large on purpose: a few sampling steps settle large shapes first). Soft-edged (1 px)."""
    base = np.clip(np.array(PALETTE[colour]) + rng.uniform(-0.04, 0.04, 3), 0.0, 1.0)
    shade = base * SHAPE_SHADE
    short = min(height, width)
    radius = short * rng.uniform(0.26, 0.34)
    square = bool(rng.integers(2))
    t = np.linspace(0.0, 1.0, frames)
    cx = np.full(frames, width * rng.uniform(0.35, 0.65))
    cy = np.full(frames, height * rng.uniform(0.35, 0.65))
    r = np.full(frames, radius)
    travel_x, travel_y = 0.4 * width, 0.4 * height
    if motion == "left":
        cx = width * rng.uniform(0.55, 0.75) - travel_x * t
    elif motion == "right":
        cx = width * rng.uniform(0.25, 0.45) + travel_x * t
    elif motion == "up":
        cy = height * rng.uniform(0.55, 0.75) - travel_y * t
    elif motion == "down":
        cy = height * rng.uniform(0.25, 0.45) + travel_y * t
    elif motion == "zoom in":
        r = short * (0.15 + 0.35 * t)
    elif motion != "still":
        raise ValueError(f"unknown motion {motion!r}")
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    out = np.empty((frames, height, width, 3))
    for i in range(frames):
        dx, dy = xs - cx[i], ys - cy[i]
        dist = np.maximum(np.abs(dx), np.abs(dy)) if square else np.hypot(dx, dy)
        inside = np.clip(r[i] - dist + 0.5, 0.0, 1.0)[..., None]
        out[i] = base * (1.0 - inside) + shade * inside
    return out


def _luma(frames: np.ndarray, factor: int) -> np.ndarray:
    """Frames -> luma (f, h/factor, w/factor), area-averaged."""
    y = frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    f, h, w = y.shape
    h, w = h // factor * factor, w // factor * factor
    return y[:, :h, :w].reshape(f, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def motion_of(frames: np.ndarray, *, factor: int = 4) -> tuple[str, dict[str, float]]:
    """The dominant motion of a clip: one of ``MOTIONS`` (or "zoom out"), and the fit behind it.

    Optical flow with a parametric model, fitted by least squares to the brightness-constancy
    equation over every pair of consecutive frames (at 1/``factor`` size, where edges move less
    than a pixel a frame): u = a + s*x, v = b + s*y about the centre of the moving edges. ``a, b``
    is the translation, ``s`` the expansion; both are turned into pixels per frame at full size
    (the expansion at the edges' mean distance from their centre), and the larger one decides the
    direction. Below 0.15 px a frame it is "still"."""
    y = _luma(frames, factor)
    ata = np.zeros((3, 3))
    atb = np.zeros(3)
    radius_sum = weight_sum = 0.0
    for a, b in zip(y[:-1], y[1:], strict=True):
        mid = (a + b) / 2
        gy, gx = np.gradient(mid)
        it = b - a
        g2 = gx**2 + gy**2
        w = g2 > max(1e-6, 0.05 * g2.max())
        if not w.any():
            continue
        ys, xs = np.nonzero(w)
        gxs, gys, its = gx[w], gy[w], it[w]
        cx, cy = xs.mean(), ys.mean()
        px, py = xs - cx, ys - cy
        rows = np.stack([gxs, gys, gxs * px + gys * py], axis=1)
        ata += rows.T @ rows
        atb += rows.T @ -its
        radius_sum += np.hypot(px, py).sum()
        weight_sum += len(px)
    if weight_sum == 0 or np.linalg.matrix_rank(ata) < 3:
        return "still", {"dx": 0.0, "dy": 0.0, "zoom": 0.0}
    a, b, s = np.linalg.solve(ata, atb)
    radius = radius_sum / weight_sum
    dx, dy, zoom = a * factor, b * factor, s * radius * factor
    fit = {"dx": float(dx), "dy": float(dy), "zoom": float(zoom)}
    translation = float(np.hypot(dx, dy))
    if max(translation, abs(zoom)) < 0.15:
        return "still", fit
    if abs(zoom) > translation:
        return ("zoom in" if zoom > 0 else "zoom out"), fit
    if abs(dx) >= abs(dy):
        return ("right" if dx > 0 else "left"), fit
    return ("down" if dy > 0 else "up"), fit


def colour_jumps(frames: np.ndarray) -> np.ndarray:
    """How far the mean colour moves (CIE76 delta E) from each frame to the next: (f - 1,). Blind
    to texture and to things moving inside a scene; a cut to another scene moves it a lot."""
    step = max(1, min(frames.shape[1], frames.shape[2]) // 64)  # every few pixels: the mean is stable
    means = np.stack([rgb_to_lab(f[::step, ::step]).reshape(-1, 3).mean(axis=0) for f in frames])
    return np.linalg.norm(means[1:] - means[:-1], axis=1)


def detect_cuts(frames: np.ndarray, *, threshold: float = 20.0, ratio: float = 3.0) -> list[int]:
    """Indices of the frames that start a new scene, by a colour-histogram-style detector: where
    the mean colour jumps by more than ``threshold`` (delta E) and by ``ratio`` times the median
    jump around it (a dissolve moves the colour a little on many frames, a cut a lot on one)."""
    jumps = colour_jumps(frames)
    cuts = []
    for i, d in enumerate(jumps):
        around = np.concatenate([jumps[max(0, i - 4) : i], jumps[i + 1 : i + 5]])
        floor = float(np.median(around)) if len(around) else 0.0
        if d > threshold and d > ratio * max(floor, 1.0):
            cuts.append(i + 1)
    return cuts
