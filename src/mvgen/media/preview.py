"""The animatic: the whole edit with no diffusion, in seconds.

Each slot is a card at the output size: its number and id, its prompt (wrapped), its timecode, length
and transition; the card's colour follows the song's sections (lighter and darker on alternate
slots, so every cut shows); a dot flashes on every beat (bigger on downbeats) and a bar runs along
the bottom through the slot. Cuts, blends and the audio are the real render's: the same plan, the
same frame arithmetic, the same encoder and muxer.
"""

from __future__ import annotations

import bisect
import colorsys
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from mvgen.audio.probe import AudioInfo
from mvgen.media.assemble import PULSE_DECAY_S, compose_frame, encode
from mvgen.timeline import PlannedShot, RenderPlan

GOLDEN = 0.618033988749895  # hue step between sections: neighbours never look alike


@lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=max(8, size))


def section_index(plan: RenderPlan, t: float) -> int:
    return bisect.bisect_right(plan.sections_s, t + 1e-6)


def card_colour(plan: RenderPlan, shot: PlannedShot) -> tuple[int, int, int]:
    """The card's background: a hue per section, lighter and darker on alternate slots."""
    hue = (0.58 + GOLDEN * section_index(plan, shot.start_s)) % 1.0
    value = 0.42 if shot.index % 2 == 0 else 0.28
    r, g, b = colorsys.hsv_to_rgb(hue, 0.55, value)
    return int(r * 255), int(g * 255), int(b * 255)


def _wrap(text: str, font, width: float) -> list[str]:
    """Greedy word wrap to a pixel width."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(lines[-1] + " " + word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _card(plan: RenderPlan, shot: PlannedShot) -> np.ndarray:
    from PIL import Image, ImageDraw

    from mvgen.timeline import timecode

    w, h = plan.width, plan.height
    img = Image.new("RGB", (w, h), card_colour(plan, shot))
    draw = ImageDraw.Draw(img)
    margin = max(4, w // 32)
    big, mid, small = _font(h // 10), _font(h // 22), _font(h // 28)
    draw.text((margin, margin), f"{shot.index + 1}  {shot.id}", font=big, fill=(255, 255, 255))
    how = shot.transition + (f" → {shot.ending}" if shot.ending and not shot.bridge else "")
    take = f" · {shot.takes} takes" if shot.takes > 1 else ""
    info = (
        f"{timecode(shot.start_s)} - {timecode(shot.end_s)} · {shot.length_beats:g} beats · {how} · "
        f"section {section_index(plan, shot.start_s) + 1} · seed {shot.seed}{take}"
    )
    draw.text((margin, margin + h // 8), info, font=small, fill=(225, 225, 225))
    lines = _wrap(shot.prompt, mid, w - 2 * margin)[:7]
    y = h // 3
    for line in lines:
        draw.text((margin, y), line, font=mid, fill=(255, 255, 255))
        y += int(h // 22 * 1.35)
    return np.asarray(img).copy()


class _Animatic:
    """Output frame index -> card frame, with beat pulses, slot progress and the real blends."""

    def __init__(self, plan: RenderPlan, on_frame: Callable[[int], None]) -> None:
        self.plan = plan
        self.on_frame = on_frame
        self.starts = [s.start_frame for s in plan.shots]
        self.downbeat_every = max(1, plan.beats_per_bar)
        self._cards: dict[int, np.ndarray] = {}

    def card(self, i: int) -> np.ndarray:
        if i not in self._cards:
            self._cards = {j: c for j, c in self._cards.items() if abs(j - i) <= 1}
            self._cards[i] = _card(self.plan, self.plan.shots[i])
        return self._cards[i]

    def _decorate(self, img: np.ndarray, i: int, k: int) -> np.ndarray:
        plan = self.plan
        shot = plan.shots[i]
        h, w = img.shape[:2]
        img = img.copy()
        # Slot progress along the bottom edge.
        u = min(max((k - shot.start_frame + 1) / max(1, shot.end_frame - shot.start_frame), 0.0), 1.0)
        bar = max(2, h // 60)
        img[h - bar :, : int(round(w * u))] = (255, 255, 255)
        # The beat dot: full on the beat, fading with the camera pulse's time constant.
        t = k / plan.fps
        b = bisect.bisect_right(plan.beats_s, t + 1e-9) - 1
        if b >= 0:
            level = math.exp(-(t - plan.beats_s[b]) / PULSE_DECAY_S)
            r = max(3, h // (14 if b % self.downbeat_every == 0 else 22))
            cx, cy = w - 3 * r, 3 * r
            window = img[cy - r : cy + r + 1, cx - r : cx + r + 1]  # a view: the dot's square only
            yy, xx = np.ogrid[-r : r + 1, -r : r + 1]
            mask = yy**2 + xx**2 <= r * r
            window[mask] = (window[mask] * (1 - level) + 255 * level).astype(np.uint8)
        return img

    def frame(self, t: float) -> np.ndarray:
        return compose_frame(
            self.plan, self.starts, t, lambda i, k: self._decorate(self.card(i), i, k), self.on_frame
        )


def render_preview(
    plan: RenderPlan, audio: AudioInfo, out: Path, *, on_frame: Callable[[int], None] = lambda k: None
) -> dict[str, object]:
    """Write the animatic of ``plan`` to ``out`` (atomically); return what ffmpeg reads back."""
    return encode(plan, _Animatic(plan, on_frame).frame, audio, out, preset="veryfast")


def preview_path(out: Path) -> Path:
    """``OUT.preview.mp4`` beside the render's output: a preview never replaces a real render."""
    return out.with_name(out.stem + ".preview.mp4")
