"""What a render leaves beside its video for people: a contact sheet, the beat grid with the cuts,
and ``OUT.html``, a self-contained report (pictures inlined, no network) with the video, the
per-shot table (prompt, seed, times, cached, seconds, take scores) and the totals."""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from typing import Any

from mvgen.audio.grid import CONFIDENT, BeatGrid
from mvgen.cache import ShotCache
from mvgen.counts import RenderCounts
from mvgen.manifest import Manifest, ShotRecord
from mvgen.ownership import HTML_MARK, MARK
from mvgen.timeline import REFERENCE_HOW, RenderPlan, middle_frame, timecode

log = logging.getLogger(__name__)


def report_paths(out: Path) -> dict[str, Path]:
    return {
        "html": out.with_suffix(".html"),
        "contact_sheet": out.with_name(out.stem + ".contact.png"),
        "beat_plot": out.with_name(out.stem + ".beats.png"),
    }


def _slot_frames(out: Path, plan: RenderPlan, stills: dict[int, Any] | None) -> dict[int, Any]:
    """Each slot's middle frame: as the assembly composed it when it kept them all, else decoded
    from the finished video (a pass over the whole file)."""
    from mvgen.media.clips import read_frames_at

    mids = [middle_frame(s) for s in plan.shots]
    if stills and all(stills.get(k) is not None for k in mids):
        return stills
    return read_frames_at(out, mids, plan.width, plan.height)


def write_contact_sheet(
    out: Path, plan: RenderPlan, rows: list[ShotRecord], cache: ShotCache, png: Path,
    stills: dict[int, Any] | None = None,
) -> Path:  # fmt: skip
    """One frame per slot from the finished video (its middle frame); a slot with takes gets a row
    of every take's middle frame, the chosen one outlined."""
    from mvgen.media.clips import read_clip
    from mvgen.media.contact import Cell, contact_sheet

    frames = _slot_frames(out, plan, stills)
    lines = []
    for s, row in zip(plan.shots, rows, strict=True):
        mid = middle_frame(s)
        caption = f"{s.index + 1} {s.id}"
        detail = f"{timecode(s.start_s)}  seed {row.seed}" + ("  cached" if row.cached else "")
        if not row.takes or s.repeat:
            lines.append([Cell(frames[mid], caption, detail)])
            continue
        cells = []
        for t in row.takes:
            entry = cache.get(t.cache_key)
            if entry is None:
                continue
            clip = read_clip(entry.clip)
            cells.append(
                Cell(clip[len(clip) // 2], f"{caption} take {t.take}", f"score {t.score:.3f}  seed {t.seed}",
                     chosen=t.take == row.take)
            )  # fmt: skip
        lines.append(cells or [Cell(frames[mid], caption, detail)])
    return contact_sheet(lines, png, title=f"{out.name}: {len(plan.shots)} slots")


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;background:#111318;color:#e8e8ea}
h1{font-size:22px;margin:0 0 4px} .meta{color:#9a9aa2;margin-bottom:16px}
video{width:min(100%,960px)} video,img{max-width:100%;border-radius:4px;background:#000} section{margin:20px 0}
table{border-collapse:collapse;width:100%} th,td{padding:4px 8px;border-bottom:1px solid #2a2c33;text-align:left;vertical-align:top}
th{color:#b8b8c0;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums} tr.shot{cursor:pointer}
tr.shot:hover{background:#1c1f27} .totals td{font-weight:600} .dim{color:#8a8a92} .warn{color:#f0b429}
.cast{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0} figure{margin:0} figcaption{color:#9a9aa2;font-size:12px}
"""

_SCRIPT = """
document.querySelectorAll('tr.shot').forEach(function (row) {
  row.addEventListener('click', function () {
    var v = document.getElementById('video');
    if (v) { v.currentTime = parseFloat(row.dataset.start); v.play().catch(function () {}); }
  });
});
"""


def _loras(r: ShotRecord) -> str:
    return ", ".join(f"{html.escape(Path(u.path).name)} {u.weight:g}" for u in r.loras)


def _png_uri(picture: Any, side: int = 240) -> str:
    """An RGB picture as an inlined PNG, at most ``side`` pixels wide."""
    import io

    from PIL import Image

    im = Image.fromarray(picture)
    if im.width > side:
        im = im.resize((side, max(1, round(im.height * side / im.width))), Image.Resampling.BOX)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def cast_section(plan: RenderPlan, rows: list[ShotRecord], frames: dict[int, Any]) -> str:
    """The report's "Cast" section: each member with pictures, those pictures, and beside them the
    middle frame of every slot the member is in, with its identity score (media/score.py)."""
    import numpy as np
    from PIL import Image

    e = html.escape
    members: dict[str, dict[str, None]] = {}  # member -> its pictures' paths, in order
    for s in plan.shots:
        for u in s.references:
            members.setdefault(u.role, {})[u.path] = None
    parts = []
    for name, paths in members.items():
        figures = []
        for path in paths:
            with Image.open(path) as im:
                uri = _png_uri(np.asarray(im.convert("RGB")))
            figures.append(f'<figure><img alt="{e(name)}" src="{uri}"><figcaption>{e(name)}: '
                           f"{e(Path(path).name)}</figcaption></figure>")  # fmt: skip
        for s, r in zip(plan.shots, rows, strict=True):
            if name in s.cast and not s.repeat:
                score = "" if r.identity is None else f" &middot; identity {r.identity:.2f}"
                figures.append(f'<figure><img alt="{e(s.id)}" src="{_png_uri(frames[middle_frame(s)])}">'
                               f"<figcaption>{s.index + 1} {e(s.id)} ({REFERENCE_HOW[s.reference_mode]})"
                               f"{score}</figcaption></figure>")  # fmt: skip
        parts.append(f'<div class="cast" data-member="{e(name)}">{"".join(figures)}</div>')
    return f"<section><h2>Cast</h2>{''.join(parts)}</section>" if parts else ""


def _how(r) -> str:
    """How a shot begins (and, drawn to an end frame, ends): the report's transition column."""
    ends = {"next": "ends on the next shot", "image": "ends on its end still"}.get(r.end, "")
    return r.transition + (f", {ends}" if ends and r.transition != "bridge" else "")


def render_html(manifest: Manifest, out: Path, pictures: dict[str, Path], cast: str = "") -> str:
    """The report page for a render's manifest (pictures inlined as data URIs; ``cast``: the cast
    section's HTML)."""
    e = html.escape
    v, a, m = manifest.video, manifest.audio, manifest.model
    rows = []
    for i, r in enumerate(manifest.shots, 1):
        takes = ""
        if r.takes:
            takes = ", ".join(
                ("<b>" if t.take == r.take else "")
                + f"{t.take}: {t.score:.3f}"
                + ("</b>" if t.take == r.take else "")
                for t in r.takes
            )
        rows.append(
            f'<tr class="shot" data-start="{r.start_s}"><td class="n">{i}</td><td>{e(r.id)}</td>'
            f'<td class="n">{timecode(r.start_s)}</td><td class="n">{timecode(r.end_s)}</td>'
            f'<td>{e(r.prompt)}</td><td class="n">{r.seed}</td><td>{e(_how(r))}</td>'
            f"<td>{takes or '-'}</td><td>{_loras(r) or '-'}</td><td>{'yes' if r.cached else 'no'}</td>"
            f'<td class="n">{r.seconds:.1f}</td></tr>'
        )
    gpu_s = sum(r.seconds for r in manifest.shots)
    counts = RenderCounts(**manifest.totals).describe()
    timings = manifest.timings_s
    pics = "".join(
        f'<section><h2>{e(label)}</h2><img alt="{e(label)}" src="{_data_uri(path)}"></section>'
        for label, path in (("Beat grid and cuts", pictures.get("beat_plot")), ("Contact sheet", pictures.get("contact_sheet")))
        if path is not None and path.is_file()
    )  # fmt: skip
    title = e(Path(manifest.shotlist).name)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{HTML_MARK}{e(MARK)}"><title>mvgen report: {title}</title>
<style>{_CSS}</style></head><body>
<h1>{title} &rarr; {e(out.name)}</h1>
<div class="meta">mvgen {e(manifest.mvgen_version)} &middot; {e(manifest.created_utc)} &middot; model {e(m.get("name", m["id"]))}
({e(m.get("family", ""))}) &middot; {a.tempo_bpm:.1f} BPM{_confidence(a)} &middot; {v.width}x{v.height} @ {v.fps:g} fps &middot;
{v.duration_s:.2f} s &middot; fit {e(manifest.fit)}</div>
<section><video id="video" controls preload="metadata" src="{e(out.name)}"></video></section>
<section><h2>Shots</h2><table id="shots"><thead><tr><th>#</th><th>id</th><th>start</th><th>end</th><th>prompt</th>
<th>seed</th><th>in</th><th>takes (score)</th><th>LoRAs</th><th>cached</th><th>seconds</th></tr></thead><tbody>
{"".join(rows)}
</tbody><tfoot><tr class="totals"><td></td><td colspan="3">totals</td>
<td>{e(counts)}</td><td colspan="5" class="dim">
total {timings.get("total_s", 0):.1f} s (generate {timings.get("generate_s", 0):.1f} s, assemble {timings.get("assemble_s", 0):.1f} s)</td>
<td class="n">{gpu_s:.1f}</td></tr></tfoot></table></section>
{cast}
{pics}
<script>{_SCRIPT}</script>
</body></html>
"""


def _confidence(a: Any) -> str:
    """`` (beat grid confidence 0.83)``, flagged below CONFIDENT; nothing for a grid the user gave."""
    if a.beat_confidence is None:
        return ""
    if a.beat_confidence < CONFIDENT:
        return (f' <span class="warn">(beat grid uncertain: confidence {a.beat_confidence:.2f}; check the beat plot'
                " below, or give --bpm / a beats file)</span>")  # fmt: skip
    return f" (beat grid confidence {a.beat_confidence:.2f})"


def write_report(out: Path, plan: RenderPlan, grid: BeatGrid, audio: Path, manifest: Manifest,
                 cache: ShotCache, stills: dict[int, Any] | None = None) -> dict[str, str]:  # fmt: skip
    """Write the contact sheet, the beat plot and OUT.html beside ``out``; return their paths
    (``stills``: each slot's middle frame as composed, see ``_slot_frames``)."""
    from mvgen.files import atomic_write_text
    from mvgen.media.plot import plot_grid

    paths = report_paths(out)
    frames = _slot_frames(out, plan, stills)
    write_contact_sheet(out, plan, manifest.shots, cache, paths["contact_sheet"], frames)
    plot_grid(audio, grid, paths["beat_plot"], cuts=[(s.start_s, s.id) for s in plan.shots[1:]],
              digest=manifest.audio.sha256)  # fmt: skip
    atomic_write_text(
        paths["html"], render_html(manifest, out, paths, cast_section(plan, manifest.shots, frames))
    )
    return {k: str(p) for k, p in paths.items()}
