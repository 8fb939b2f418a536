"""Stills: a shot's storyboard picture (`image:`) or a cast member's picture turned into a model's
start frame at its render size (config/stills.py checks and hashes them before anything loads).

A still of another shape than the render is fitted by ``video.image_fit``: ``cover`` scales it to
fill the frame and crops the middle (nothing of the frame is empty; the still's edges may be lost),
``contain`` scales it to fit inside and pads the rest with black (all of the still is seen). The
fitted pixels depend only on the file's content, the rule and the render size, so a clip's key holds
the file's hash and the rule (config/stills.py's ``still_digest``) and the render size.

A cast member's picture given to a model as a reference image (Wan VACE) is not fitted by that
rule: the model's pipeline places it, whole, on a white canvas (``fit_inside``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def _flat(path: str | Path, background: tuple[int, int, int]):
    """The picture as an RGB PIL image, transparency flattened onto ``background``."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGBA")
        flat = Image.new("RGB", im.size, background)
        flat.paste(im, mask=im.getchannel("A"))
    return flat


def fit_still(path: str | Path, width: int, height: int, fit: str = "cover") -> np.ndarray:
    """The still as uint8 (height, width, 3) RGB: ``cover`` (scaled to fill, centre cropped) or
    ``contain`` (scaled to fit, centred on black). Transparency is flattened onto black."""
    import numpy as np
    from PIL import Image

    flat = _flat(path, (0, 0, 0))
    w, h = flat.size
    scale = max(width / w, height / h) if fit == "cover" else min(width / w, height / h)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    scaled = flat.resize((sw, sh), Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(scaled, ((width - sw) // 2, (height - sh) // 2))  # negative offsets crop (cover)
    return np.asarray(canvas, dtype=np.uint8).copy()


def fit_inside(path: str | Path, width: int, height: int) -> np.ndarray:
    """A reference picture (VACE) as uint8 RGB scaled to fit inside ``width`` x ``height`` at the
    size WanVACEPipeline scales it to (each side truncated), antialiased, so the pipeline's own
    bilinear resize leaves it as it is; it pads it onto a white canvas. Transparency is flattened
    onto white, that canvas's colour (a cut-out character stands on white, as VACE's references do)."""
    import numpy as np
    from PIL import Image

    flat = _flat(path, (255, 255, 255))
    w, h = flat.size
    scale = min(width / w, height / h)
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return np.asarray(flat.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), dtype=np.uint8).copy()
