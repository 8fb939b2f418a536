"""Hand the edit to an editor: an OpenTimelineIO timeline of the render.

One clip per slot at its cut, each referencing that slot's frames exported beside the timeline
(``NAME_media/NNN-ID.mp4``, exactly what the video shows there), and an audio track with the song.
Clip metadata keeps mvgen's view of the shot (prompt, seed, take, cache key) so a round trip back
is possible. Blends are recorded in metadata; the clips themselves meet at the cut frame.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mvgen import __version__
from mvgen.errors import ConfigError, SetupError
from mvgen.ffmpeg import run_ffmpeg
from mvgen.manifest import PreviewShotRecord, ShotRecord
from mvgen.ownership import FOLDER_MARK
from mvgen.timeline import RenderPlan


def check_otio_path(path: str) -> Path:
    p = Path(path).expanduser()
    if p.suffix.lower() != ".otio":
        raise ConfigError(f"--otio: the timeline must be an .otio file (got {p.name!r})")
    if p.is_dir():
        raise ConfigError(f"--otio: {p} is a folder; name an .otio file")
    return p


def require_otio():
    try:
        import opentimelineio as otio
    except ImportError:
        raise SetupError(
            "--otio needs the opentimelineio package",
            hint='pip install "mvgen[otio]" (or: pip install opentimelineio)',
        ) from None
    return otio


def media_folder(path: Path) -> Path:
    return path.with_name(path.stem + "_media")


def _export_slots(video: Path, plan: RenderPlan, folder: Path) -> list[Path]:
    """Each slot's frames of the finished video as its own file (one encoding pass, keyframes at
    the cuts, split there)."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cuts = [s.start_frame for s in plan.shots[1:]]
    keys = "+".join(f"eq(n,{f})" for f in cuts) or "0"
    args = [
        "-y",
        "-i",
        str(video),
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "16",
        "-pix_fmt",
        "yuv420p",
        "-force_key_frames",
        f"expr:{keys}",
        "-f",
        "segment",
        "-reset_timestamps",
        "1",
    ]
    if cuts:
        args += ["-segment_frames", ",".join(map(str, cuts))]
    else:
        args += ["-segment_time", "100000"]
    run_ffmpeg([*args, str(tmp / "%05d.mp4")], what="exporting the shots for the OTIO timeline")  # fmt: skip
    parts = sorted(tmp.glob("*.mp4"))
    if len(parts) != len(plan.shots):
        raise SetupError(
            f"exporting shots for OTIO: expected {len(plan.shots)} pieces, ffmpeg made {len(parts)}"
        )
    (tmp / FOLDER_MARK).write_text(
        "written by mvgen: the next export replaces this folder\n", encoding="utf-8"
    )
    names = []
    for s, part in zip(plan.shots, parts, strict=True):
        name = f"{s.index + 1:03d}-{s.id}.mp4"
        part.rename(tmp / name)
        names.append(name)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return [folder / n for n in names]


def write_otio(
    path: Path,
    video: Path,
    audio: Path,
    plan: RenderPlan,
    shots: list[ShotRecord] | list[PreviewShotRecord],
    title: str,
) -> Path:
    """Write the timeline (and its media folder) for a finished render."""
    from mvgen.files import atomic_path

    otio = require_otio()
    rate = plan.fps
    media = _export_slots(video, plan, media_folder(path))

    def span(frames: int):
        return otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(frames, rate)
        )

    track = otio.schema.Track(name="mvgen shots", kind=otio.schema.TrackKind.Video)
    for s, row, file in zip(plan.shots, shots, media, strict=True):
        frames = s.end_frame - s.start_frame
        ref = otio.schema.ExternalReference(target_url=file.resolve().as_uri(), available_range=span(frames))
        meta = {
            k: getattr(row, k, None)
            for k in ("id", "prompt", "seed", "take", "cache_key", "transition", "blend_frames", "end")
        }
        meta["start_s"], meta["media"] = s.start_s, f"{file.parent.name}/{file.name}"
        track.append(otio.schema.Clip(name=s.id, media_reference=ref, source_range=span(frames),
                                      metadata={"mvgen": meta}))  # fmt: skip
    sound = otio.schema.Track(name="audio", kind=otio.schema.TrackKind.Audio)
    sound.append(
        otio.schema.Clip(
            name=audio.name,
            media_reference=otio.schema.ExternalReference(target_url=audio.resolve().as_uri()),
            source_range=span(plan.total_frames),
        )
    )
    timeline = otio.schema.Timeline(name=title, global_start_time=otio.opentime.RationalTime(0, rate))
    timeline.metadata["mvgen"] = {"version": __version__}  # the mark mvgen knows its timelines by
    timeline.tracks.append(track)
    timeline.tracks.append(sound)
    with atomic_path(path, suffix=".otio") as tmp:
        otio.adapters.write_to_file(timeline, str(tmp), adapter_name="otio_json")
    return path
