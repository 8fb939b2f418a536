"""Colour anchoring for chained shots.

Each link of an image-to-video chain starts from the previous link's last frame, and models drift in
colour a little every time (a warmer cast, lifted blacks): by the fourth link it shows. mvgen matches
every chained clip's colour statistics (per-channel mean and spread in CIELAB, a perceptual space,
Reinhard-style) to the first shot of its chain, so drift cannot compound, and reports the drift of
the mean colour (CIE76 delta E) before and after.
"""

from __future__ import annotations

import numpy as np

# sRGB (D65) <-> XYZ
_M = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_M_INV = np.linalg.inv(_M)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) sRGB -> float (..., 3) CIELAB."""
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _M.T / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1
    )


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float (..., 3) CIELAB -> uint8 (..., 3) sRGB (clipped)."""
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE
    lin = np.clip(xyz @ _M_INV.T, 0.0, 1.0)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return (np.clip(c, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def colour_stats(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of each Lab channel over a clip (every 4th pixel of every 2nd frame is plenty)."""
    lab = rgb_to_lab(frames[::2, ::4, ::4]).reshape(-1, 3)
    return lab.mean(axis=0), lab.std(axis=0)


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def anchor_colours(
    frames: np.ndarray, anchor: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, float, float]:
    """``frames`` with their Lab mean and spread moved to the anchor's; returns (frames, delta E of
    the mean colour vs the anchor before, after). Frame by frame, so memory stays at one frame's
    Lab copy whatever the clip's length."""
    mean_a, std_a = anchor
    mean, std = colour_stats(frames)
    before = delta_e(mean, mean_a)
    gain = np.where(std > 1e-6, std_a / np.maximum(std, 1e-6), 1.0)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        out[i] = lab_to_rgb((rgb_to_lab(frame) - mean) * gain + mean_a)
    after = delta_e(colour_stats(out)[0], mean_a)
    return out, before, after
