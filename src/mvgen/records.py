"""What a render leaves beside its video: the manifest (``OUT.json``; its keys are a contract, see
DESIGN.md), built here for renders and previews alike, and the report and OTIO timeline written from
it. The up-to-date check reads the previous manifest back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mvgen import __version__
from mvgen.cache import ShotCache
from mvgen.counts import RenderCounts
from mvgen.errors import EncodeError
from mvgen.files import atomic_write_text, is_disk_full, sha256_file
from mvgen.manifest import (
    AudioRecord,
    GenerationRecord,
    LoraRecord,
    Manifest,
    OutputRecord,
    PreviewManifest,
    PreviewShotRecord,
    ShotRecord,
    StillRecord,
    VideoRecord,
    read_manifest,
)
from mvgen.prepare import Job
from mvgen.progress import ProgressCallback, ProgressEvent
from mvgen.render.state import RenderState, meta_of
from mvgen.timeline import RenderPlan

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def audio_record(job: Job, plan: RenderPlan) -> AudioRecord:
    return AudioRecord(
        path=str(job.audio.path), sha256=job.audio_sha256, duration_s=round(job.audio.duration_s, 6),
        tempo_bpm=round(plan.tempo_bpm, 3), beats_source=plan.beats_source, sample_rate=job.audio.sample_rate,
        channels=job.audio.channels, beat_confidence=plan.beat_confidence,
    )  # fmt: skip


def video_record(path: Path, plan: RenderPlan) -> VideoRecord:
    return VideoRecord(
        path=str(path), width=plan.width, height=plan.height, fps=plan.fps, frames=plan.total_frames,
        duration_s=round(plan.duration_s, 6), gen_width=plan.gen_width, gen_height=plan.gen_height,
        native_fps=plan.native_fps,
    )  # fmt: skip


def _slot_times(s: Any) -> dict[str, Any]:
    return {"start_s": round(s.start_s, 6), "end_s": round(s.end_s, 6), "start_frame": s.start_frame,
            "end_frame": s.end_frame, "num_frames": s.num_frames}  # fmt: skip


def preview_manifest(job: Job, plan: RenderPlan, out: Path, seconds: float, info: Any) -> PreviewManifest:
    """The animatic's manifest: the plan's slots, no clips."""
    rows = [
        PreviewShotRecord(id=s.id, prompt=s.prompt, seed=s.seed, **_slot_times(s), transition=s.transition,
                          blend_frames=s.blend_frames, takes=s.takes, end=s.ending)
        for s in plan.shots
    ]  # fmt: skip
    return PreviewManifest(
        mvgen_version=__version__, preview=True, created_utc=_now(), shotlist=str(job.shotlist.path),
        audio=audio_record(job, plan), video=video_record(out, plan), fit=plan.fit, shots=rows,
        timings_s={"total_s": round(seconds, 3)}, verified=info,
    )  # fmt: skip


def shot_rows(state: RenderState) -> list[ShotRecord]:
    """A record per slot: its timing, its clip and take, whether it came from the cache."""
    made, rows = state.made, []
    for slot, cands in zip(state.slots, state.slot_takes(), strict=True):
        s, chosen = slot.shot, state.takes.manifest_fields(slot.shot)
        meta = meta_of(state.cache, slot.key)
        rows.append(ShotRecord(
            id=s.id, prompt=s.prompt, negative=s.negative, seed=s.take_seeds()[chosen["take"] - 1],
            **_slot_times(s), play_frames=s.shown_frames, repeat=s.repeat, segment=s.segment,
            transition=s.transition, blend_frames=s.blend_frames, image_sha256=slot.image_sha256,
            colour_drift=meta.get("colour_drift"), cache_key=slot.key,
            cached=not made.intersection(cands or ()), seconds=round(slot.seconds, 3), **chosen,
            loras=[LoraRecord(path=u.path, sha256=u.sha256, weight=u.weight) for u in s.loras], ray=slot.placement,
            retime=s.retime, cast=list(s.cast), image=StillRecord(**asdict(s.image)) if s.image else None,
            reference_mode=s.reference_mode, identity=(meta.get("take_score") or {}).get("identity"),
            end=s.ending, end_image=StillRecord(**asdict(s.end)) if s.end else None, end_sha256=slot.end_sha256,
            windows=state.plan.windows_of(s),
        ))  # fmt: skip
    return rows


def render_manifest(job: Job, state: RenderState, *, backend: str, overlap: bool, counts: RenderCounts,
                    timings: dict[str, float], output: dict[str, Any], verified: Any) -> Manifest:  # fmt: skip
    """The render's manifest (``report`` and ``otio`` are added once written)."""
    plan = state.plan
    generation = GenerationRecord(
        steps=plan.steps, guidance=plan.guidance, backend=backend, overlap=overlap, quality=plan.quality,
        cache=plan.step_cache, compile=plan.compile, attention=plan.attention,
    )  # fmt: skip
    return Manifest(
        mvgen_version=__version__, created_utc=_now(), shotlist=str(job.shotlist.path),
        model={**state.ident.to_json(), "family": job.model.preset.family},
        audio=audio_record(job, plan), video=video_record(job.out, plan), generation=generation,
        fit=plan.fit, totals=counts.to_json(), shots=shot_rows(state),
        timings_s={k: round(v, 3) for k, v in timings.items()}, output=OutputRecord(**output), verified=verified,
    )  # fmt: skip


def write_manifest(path: Path, manifest: Manifest | PreviewManifest) -> None:
    try:
        atomic_write_text(path, json.dumps(manifest.to_json(), indent=2) + "\n")
    except OSError as exc:
        if is_disk_full(exc):
            raise EncodeError(f"{path}: disk full while writing the manifest") from None
        raise


def up_to_date(job: Job, rkey: str) -> Manifest | None:
    """The previous manifest when ``job.out`` is exactly what this render would write again."""
    previous = read_manifest(job.manifest_path)
    if previous is None or previous.output.render_key != rkey or not job.out.is_file():
        return None
    try:
        return previous if sha256_file(job.out) == previous.output.sha256 else None
    except OSError:
        return None


def write_report(job: Job, plan: RenderPlan, grid: Any, manifest: Manifest, cache: ShotCache,
                 previous: Manifest | None, progress: ProgressCallback,
                 stills: dict[int, Any] | None = None) -> dict[str, str] | None:  # fmt: skip
    """The contact sheet, beat plot and OUT.html (kept when the video was not re-encoded and they
    are all there). A failure here is a warning: the video and manifest are what the render is for.
    ``stills``: each slot's middle frame as the assembly composed it (else read from the video)."""
    from mvgen.report import report_paths
    from mvgen.report import write_report as write

    paths = report_paths(job.out)
    if previous is not None and previous.report and all(p.is_file() for p in paths.values()):
        return previous.report
    try:
        return write(job.out, plan, grid, job.audio.path, manifest, cache, stills)
    except Exception as exc:  # noqa: BLE001
        log.debug("report failed", exc_info=True)
        progress(ProgressEvent("warning", message=f"report not written: {type(exc).__name__}: {exc}"))
        return None


def write_otio(job: Job, plan: RenderPlan, video: Path, path: Path, rows: list[ShotRecord] | list[PreviewShotRecord],
               progress: ProgressCallback) -> Path:  # fmt: skip
    from mvgen.otio_export import media_folder
    from mvgen.otio_export import write_otio as write

    progress(ProgressEvent("info", message=f"writing {path.name} and {media_folder(path).name}/"))
    title = job.shotlist.shots.title or job.shotlist.path.stem
    return write(path, video, job.audio.path, plan, rows, title)
