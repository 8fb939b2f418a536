"""What a viewer sees in a clip, measured: its named colour, its dominant motion, where it cuts.

These are the built-in ``tiny`` model's vocabulary and the eyes of the test suite. The tiny model is
trained (``scripts/train_tiny.py``) on the synthetic clips made here: a field of one of eight named
colours textured with darker discs and squares, which the camera pans over (the picture moves left,
right, up or down), zooms into or holds still. The measures read any video, though: the nearest
named colour of a frame's mean (CIELAB), the dominant direction of a parametric optical-flow fit
(translation plus expansion), and a cut detector on jumps of the mean colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


# The synthetic world's texture: discs and squares scattered over a square tile that repeats
# forever, so a camera can move over it in any direction for as long as it likes. Sizes and speeds
# are in pixels, not fractions of the frame: the tiny model sees in patches of 16 px, and a pan moves
# exactly one patch every 4 frames (one latent frame) at any frame size.
TILE = 256  # px
PAN_SPEED = 4.0  # px a frame
ZOOM_RATE = math.log(1.8) / 32  # the scale grows 1.8x over 32 frames
COVERAGE = 0.3  # of the field, roughly, under shapes


@dataclass(frozen=True)
class Camera:
    """Where a camera looks on the tile: the offset (px) of the frame's centre and the zoom (>= 1)."""

    x: float = 0.0
    y: float = 0.0
    scale: float = 1.0


def texture(rng: np.random.Generator) -> np.ndarray:
    """A tile's shapes: rows of (x, y, radius, square), radii 10-20 px, covering ~30 % of it."""
    count = int(round(-math.log(1 - COVERAGE) * TILE * TILE / (math.pi * 15.0**2 * 1.1)))
    return np.stack(
        [
            rng.uniform(0, TILE, count),
            rng.uniform(0, TILE, count),
            rng.uniform(10.0, 20.0, count),
            rng.integers(0, 2, count).astype(np.float64),
        ],
        axis=1,
    )


def camera_path(motion: str, frames: int, start: Camera = Camera()) -> list[Camera]:
    """The camera of each frame for ``motion``, starting at ``start``: a pan of ``PAN_SPEED`` px a
    frame (the picture moves that way, so the camera moves the other), a zoom into the frame's
    centre, or nothing."""
    steps = {"left": (1, 0), "right": (-1, 0), "up": (0, 1), "down": (0, -1)}
    path = []
    for i in range(frames):
        if motion in steps:
            sx, sy = steps[motion]
            path.append(
                Camera(
                    start.x + sx * PAN_SPEED * i / start.scale,
                    start.y + sy * PAN_SPEED * i / start.scale,
                    start.scale,
                )
            )
        elif motion == "zoom in":
            path.append(Camera(start.x, start.y, start.scale * math.exp(ZOOM_RATE * i)))
        elif motion == "still":
            path.append(start)
        else:
            raise ValueError(f"unknown motion {motion!r}")
    return path


def coverage_map(shapes: np.ndarray) -> np.ndarray:
    """The tile (TILE, TILE) as 0..1 coverage by its shapes, edges soft (1 px), wrapping around."""
    cover = np.zeros((TILE, TILE))
    for sx, sy, r, square in shapes:
        rows = np.arange(math.floor(sy - r - 1), math.ceil(sy + r + 2))
        cols = np.arange(math.floor(sx - r - 1), math.ceil(sx + r + 2))
        dy = (rows + 0.5 - sy)[:, None]
        dx = (cols + 0.5 - sx)[None, :]
        dist = np.maximum(np.abs(dx), np.abs(dy)) if square else np.hypot(dx, dy)
        window = np.ix_(rows % TILE, cols % TILE)
        cover[window] = np.maximum(cover[window], np.clip(r - dist + 0.5, 0.0, 1.0))
    return cover


def render(
    shapes: np.ndarray, colours: np.ndarray, path: list[Camera], height: int, width: int
) -> np.ndarray:
    """Frames (len(path), height, width, 3) in [0, 1]: each frame's field colour (``colours``, (f, 3))
    with the shapes at half its brightness, seen through that frame's camera (bilinear)."""
    cover_tile = coverage_map(shapes)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    xs -= width / 2
    ys -= height / 2
    out = np.empty((len(path), height, width, 3))
    for i, cam in enumerate(path):
        u = cam.x + xs / cam.scale - 0.5
        v = cam.y + ys / cam.scale - 0.5
        u0, v0 = np.floor(u), np.floor(v)
        fu, fv = u - u0, v - v0
        i0, j0 = v0.astype(np.int64) % TILE, u0.astype(np.int64) % TILE
        i1, j1 = (i0 + 1) % TILE, (j0 + 1) % TILE
        cover = (cover_tile[i0, j0] * (1 - fu) + cover_tile[i0, j1] * fu) * (1 - fv) + (
            cover_tile[i1, j0] * (1 - fu) + cover_tile[i1, j1] * fu
        ) * fv
        out[i] = colours[i] * (1.0 - cover[..., None] * (1.0 - SHAPE_SHADE))
    return out


def field_colour(colour: str, rng: np.random.Generator) -> np.ndarray:
    """A named colour as a field's sRGB, jittered a little."""
    return np.clip(np.array(PALETTE[colour]) + rng.uniform(-0.04, 0.04, 3), 0.0, 1.0)


def synthetic_clip(
    colour: str, motion: str, frames: int, height: int, width: int, rng: np.random.Generator
) -> np.ndarray:
    """A clip (frames, height, width, 3) of floats in [0, 1]: a ``colour`` field textured with darker
    discs and squares, which the camera pans over (left, right, up, down: the picture moves that way,
    4 px a frame), zooms into (1.8x over 32 frames) or holds still."""
    start = Camera(rng.uniform(0, TILE), rng.uniform(0, TILE))
    base = field_colour(colour, rng)
    return render(texture(rng), np.tile(base, (frames, 1)), camera_path(motion, frames, start), height, width)


def half_ease(frames: int) -> np.ndarray:
    """Weights (frames,) that ease from 0 to 1 (smoothstep) over a clip's first half, 1 after."""
    t = np.clip(np.arange(frames) / max(1.0, 0.5 * (frames - 1)), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def synthetic_continuation(
    before: tuple[str, str],
    after: tuple[str, str],
    frames: tuple[int, int],
    height: int,
    width: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Two clips of one scene: ``before`` = (colour, motion) for ``frames[0]`` frames, then the
    camera carries on from where it was with ``after``'s motion while the colour eases into
    ``after``'s over the first half of the second clip. The image-to-video model learns the second
    from the first's last frame."""
    shapes = texture(rng)
    path = camera_path(before[1], frames[0], Camera(rng.uniform(0, TILE), rng.uniform(0, TILE)))
    first_colour = field_colour(before[0], rng)
    first = render(shapes, np.tile(first_colour, (frames[0], 1)), path, height, width)
    n = frames[1]
    ease = half_ease(n)[:, None]
    colours = (1 - ease) * first_colour + ease * field_colour(after[0], rng)
    second = render(shapes, colours, camera_path(after[1], n, path[-1]), height, width)
    return first, second


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
