"""The contact sheet: one captioned frame per shot (and per take, where a shot has several), so a
render can be judged at a glance and takes compared side by side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CELL_W = 240
COLUMNS = 6


@dataclass(frozen=True)
class Cell:
    frame: np.ndarray  # uint8 (h, w, 3)
    caption: str  # first line, bold
    detail: str  # second line
    chosen: bool = False  # outlined: the take the video uses


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def contact_sheet(rows: list[list[Cell]], png: Path, *, title: str = "") -> Path:
    """Draw rows of cells (a row per shot; takes side by side) into ``png``; return its path."""
    from PIL import Image, ImageDraw

    from mvgen.files import atomic_path

    first = next(c.frame for row in rows for c in row)
    cell_h = max(2, round(CELL_W * first.shape[0] / first.shape[1]))
    text_h, pad = 34, 8
    singles = sum(1 for row in rows if len(row) == 1)
    columns = min(COLUMNS, max(singles, max(len(row) for row in rows)))
    # Single-take shots flow in a grid; a shot with takes gets a row of its own.
    lines: list[list[Cell]] = []
    flow: list[Cell] = []
    for row in rows:
        if len(row) == 1:
            flow.append(row[0])
            if len(flow) == columns:
                lines.append(flow)
                flow = []
            continue
        if flow:
            lines.append(flow)
            flow = []
        lines += [row[k : k + columns] for k in range(0, len(row), columns)]
    if flow:
        lines.append(flow)
    head = 30 if title else 0
    width = pad + columns * (CELL_W + pad)
    height = head + pad + len(lines) * (cell_h + text_h + pad)
    sheet = Image.new("RGB", (width, height), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 6), title, font=_font(18), fill=(240, 240, 240))
    for r, line in enumerate(lines):
        for c, cell in enumerate(line):
            x, y = pad + c * (CELL_W + pad), head + pad + r * (cell_h + text_h + pad)
            sheet.paste(Image.fromarray(cell.frame).resize((CELL_W, cell_h), Image.BILINEAR), (x, y))
            if cell.chosen:
                draw.rectangle(
                    (x - 3, y - 3, x + CELL_W + 2, y + cell_h + 2), outline=(255, 200, 40), width=3
                )
            draw.text((x, y + cell_h + 3), cell.caption, font=_font(13), fill=(240, 240, 240))
            draw.text((x, y + cell_h + 19), cell.detail, font=_font(11), fill=(170, 170, 170))
    png.parent.mkdir(parents=True, exist_ok=True)
    from PIL.PngImagePlugin import PngInfo

    from mvgen.ownership import MARK

    info = PngInfo()
    info.add_text("Software", MARK)  # the mark by which mvgen knows the file as its own
    with atomic_path(png, suffix=".png") as tmp:
        sheet.save(tmp, format="PNG", pnginfo=info)
    return png
