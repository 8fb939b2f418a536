"""The orchestrator: preflight -> analyze -> plan -> generate -> assemble.

Everything a user can get wrong is checked in ``prepare`` before any model loads. Generated shots
go to the content-addressed cache as they finish, so an interrupted render resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvgen import __version__
from mvgen.audio.beatsfile import BeatOverride, override_grid, read_beats_file
from mvgen.audio.grid import BeatGrid
from mvgen.audio.probe import AudioInfo, probe_audio
from mvgen.cache import CLIP_NAME, ShotCache, shot_key
from mvgen.config.loader import LoadedShotList, load_shotlist, loc_str, locate
from mvgen.config.presets import ModelRef, all_presets, cached_hub_index, require_cached, resolve_model
from mvgen.counts import RenderCounts, count_render
from mvgen.errors import (
    AudioError,
    ConfigError,
    EncodeError,
    ExitCode,
    GenerationError,
    Interrupted,
    MvgenError,
    SetupError,
)
from mvgen.estimate import EtaClock, prior_rate
from mvgen.files import atomic_write_text, is_disk_full, sha256_file, sweep_stale_temps
from mvgen.progress import ProgressCallback, ProgressEvent, null_progress
from mvgen.takes import TakeBook
from mvgen.timeline import (
    FieldError,
    RenderPlan,
    anchor_root,
    check_size,
    last_shown_frame,
    plan_video,
    precheck_lengths,
)
from mvgen.wording import plural

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A fully checked render job: nothing in it can be a user's mistake any more."""

    shotlist: LoadedShotList
    audio: AudioInfo
    audio_sha256: str
    model: ModelRef
    out: Path
    beats: BeatOverride | None = None  # a grid given by the user instead of detection

    @property
    def manifest_path(self) -> Path:
        return manifest_path_for(self.out)


def manifest_path_for(out: Path) -> Path:
    return out.with_suffix(".json")


def with_levers(loaded: LoadedShotList, levers: dict[str, Any] | None) -> LoadedShotList:
    """The shot list with command-line `generation:` values (None: keep the file's)."""
    given = {k: v for k, v in (levers or {}).items() if v is not None}
    if not given:
        return loaded
    shots = loaded.shots
    generation = shots.generation.model_copy(update=given)
    return replace(loaded, shots=shots.model_copy(update={"generation": generation}))


def draft_path(out: Path) -> Path:
    """``OUT.draft.mp4``: a draft never replaces a final render."""
    return out.with_name(out.stem + ".draft.mp4")


def _resolve_out(loaded: LoadedShotList, out: str | None) -> Path:
    if out is not None:
        p = Path(out).expanduser()
    elif loaded.shots.output_settings().path:
        p = loaded.base_dir / Path(loaded.shots.output_settings().path).expanduser()
    else:
        p = loaded.path.resolve().with_suffix(".mp4")
    at = ("output",) if isinstance(loaded.shots.output, str) else ("output", "path")
    where = "--out" if out is not None else f"{locate(loaded, at)}: output"
    if p.is_dir():
        raise ConfigError(f"{where}: {p} is a folder; name an .mp4 file")
    if p.suffix.lower() != ".mp4":
        raise ConfigError(f"{where}: the output must be an .mp4 file (got {p.name!r})")
    if p.resolve() == loaded.path.resolve():
        raise ConfigError(f"{where}: the output would overwrite the shot list")
    parent = p.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"{where}: {parent} is not a folder")
    return draft_path(p) if loaded.shots.generation.quality == "draft" else p


def _resolve_audio(loaded: LoadedShotList, audio: str | None) -> Path:
    if audio is not None:
        return Path(audio).expanduser()
    settings = loaded.shots.audio_settings()
    if settings is not None:
        return loaded.base_dir / Path(settings.path).expanduser()
    raise ConfigError(
        f"{loaded.path}: no audio track: set `audio:` in the shot list or pass --audio TRACK",
    )


@dataclass(frozen=True)
class GridOptions:
    """Beat-grid overrides from the command line (they win over the shot list's)."""

    bpm: float | None = None
    offset_s: float | None = None
    beats_file: str | None = None

    def __post_init__(self) -> None:
        if self.bpm is not None and self.beats_file is not None:
            raise ConfigError("--bpm and --beats-file: give one or the other")
        if self.offset_s is not None and self.bpm is None:
            raise ConfigError("--offset goes with --bpm")
        if self.bpm is not None and not 0 < self.bpm <= 400:
            raise ConfigError(f"--bpm must be between 0 and 400 (got {self.bpm:g})")
        if self.offset_s is not None and self.offset_s < 0:
            raise ConfigError(f"--offset must be >= 0 seconds (got {self.offset_s:g})")


def resolve_override(loaded: LoadedShotList | None, grid: GridOptions | None) -> BeatOverride | None:
    """The user's beat grid, if any: the CLI's, else the shot list's ``audio:`` mapping."""
    if grid is not None and grid.bpm is not None:
        return BeatOverride(bpm=grid.bpm, offset_s=grid.offset_s or 0.0)
    if grid is not None and grid.beats_file is not None:
        return read_beats_file(Path(grid.beats_file).expanduser())
    settings = loaded.shots.audio_settings() if loaded is not None else None
    if settings is None:
        return None
    if settings.bpm is not None:
        return BeatOverride(
            bpm=settings.bpm, offset_s=settings.offset_s or 0.0, beats_per_bar=settings.beats_per_bar
        )
    if settings.beats_file is not None:
        path = loaded.base_dir / Path(settings.beats_file).expanduser()
        return read_beats_file(path, beats_per_bar=settings.beats_per_bar)
    return None


def prepare(
    shots_path: str | Path,
    *,
    audio: str | None = None,
    out: str | None = None,
    model: str | None = None,
    device: str = "auto",
    require_weights: bool = True,
    grid: GridOptions | None = None,
    levers: dict[str, Any] | None = None,
    writes: str | None = None,
    otio: Path | None = None,
) -> Job:
    """Check everything a render needs, cheaply: shot list, output path, audio, model, device.
    Every mistake found is reported at once (one ``ConfigError``, a line each).
    ``require_weights=False`` (planning) accepts a hub model whose weights are not downloaded.
    ``levers``: command-line values for `generation:` keys (quality, compile) that replace the file's.
    ``writes``: "render" or "preview": also refuse to overwrite a file at any of the paths that job
    writes (and ``otio``'s) which mvgen did not write (ownership.py)."""
    loaded = with_levers(load_shotlist(shots_path), levers)
    problems: list[MvgenError] = []  # bad input (exit 2): every one is reported
    setup: list[SetupError] = []  # the machine lacks something (exit 4): reported once the input is right

    def check(step: Callable[[], Any]) -> Any:
        try:
            return step()
        except (ConfigError, AudioError) as exc:
            problems.append(exc)
        except SetupError as exc:
            setup.append(exc)
        return None

    out_path = check(lambda: _resolve_out(loaded, out))
    info = check(lambda: probe_audio(_resolve_audio(loaded, audio)))
    if info is not None and out_path is not None and info.path.resolve() == out_path.resolve():
        problems.append(ConfigError(f"{out_path}: the output would overwrite the audio track"))
    model_spec = model or loaded.shots.model
    ref = check(lambda: _resolve_model(loaded, model_spec, model is not None, require_weights))
    if ref is not None:
        check(lambda: _located_step(loaded, lambda: check_size(loaded.shots, ref.preset)))
        check(lambda: _located_step(loaded, lambda: precheck_lengths(loaded.shots)))
        check(
            lambda: _located_step(
                loaded, lambda: _check_chain_model(loaded, ref, model_spec, require_weights)
            )
        )
    if writes is not None and out_path is not None:
        check(lambda: _check_outputs(loaded, out, out_path, writes, otio))
    override = check(lambda: resolve_override(loaded, grid))
    if problems:
        raise _all_of(problems)
    if setup:
        raise setup[0]
    if device != "auto":
        from mvgen.generate.local import pick_device

        pick_device(device)
    return Job(loaded, info, sha256_file(info.path), ref, out_path, override)


def _resolve_model(loaded: LoadedShotList, spec: str, from_cli: bool, require_weights: bool) -> ModelRef:
    try:
        return resolve_model(spec, base_dir=loaded.base_dir, require_weights=require_weights)
    except ConfigError as exc:
        where = "--model" if from_cli else f"{locate(loaded, ('model',))}: model"
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None


def _located_step(loaded: LoadedShotList, step: Callable[[], Any]) -> Any:
    try:
        return step()
    except FieldError as exc:
        raise _located(loaded, exc) from None


def _check_outputs(
    loaded: LoadedShotList, out: str | None, out_path: Path, writes: str, otio: Path | None
) -> None:
    """Refuse a job that would overwrite a file mvgen did not write (see ownership.py)."""
    from mvgen.media.preview import preview_path
    from mvgen.otio_export import media_folder
    from mvgen.ownership import check_not_foreign
    from mvgen.report import report_paths

    video = preview_path(out_path) if writes == "preview" else out_path
    roles = {video: "the video" if writes != "preview" else "the animatic",
             manifest_path_for(video): "its manifest"}  # fmt: skip
    if writes != "preview":
        names = {
            "html": "the report page",
            "contact_sheet": "the contact sheet",
            "beat_plot": "the beat plot",
        }
        roles.update({path: names[kind] for kind, path in report_paths(video).items()})
    if otio is not None:
        roles.update({otio: "the OTIO timeline", media_folder(otio): "the OTIO timeline's shots"})
    job = f"{'previewing' if writes == 'preview' else 'rendering'} {loaded.path.name} to {video.name}"
    check_not_foreign(roles, manifest_path_for(video), job=job)


def _all_of(problems: list[MvgenError]) -> MvgenError:
    """The problems found while checking a job, as one error with a line each (exit 2)."""
    if len(problems) == 1:
        return problems[0]
    lines = [line for p in problems for line in (p.message, *p.more)]
    hints = list(dict.fromkeys(p.hint for p in problems if p.hint))
    return ConfigError(lines[0], more=tuple(lines[1:]), hint="; ".join(hints) or None)


def _i2v_at_hand(ref: ModelRef) -> bool:
    """Whether the model's image-to-video sibling can be loaded here without a download (long shots
    are then extended by chained segments; otherwise they are slowed to fit, as before)."""
    if not ref.preset.has_i2v:
        return False
    return ref.source == "builtin" or cached_hub_index(ref.preset.i2v_repo_id) is not None


def _check_chain_model(loaded: LoadedShotList, ref: ModelRef, spec: str, require_weights: bool) -> None:
    """``transition: chain`` needs the model's image-to-video sibling: refuse a model without one
    before anything runs, and (for a render) one whose sibling's weights are not here."""
    shots = loaded.shots
    chained = [i for i, s in enumerate(shots.shots) if (s.transition or shots.timing.transition) == "chain"]
    if not chained:
        return
    i = chained[0]
    loc = ("shots", i, "transition") if shots.shots[i].transition else ("timing", "transition")
    if not ref.preset.has_i2v:
        with_i2v = sorted(n for n, p in all_presets().items() if p.has_i2v)
        raise FieldError(
            loc,
            f"chain needs an image-to-video model and {spec!r} has none",
            hint=f"use a preset with one ({', '.join(with_i2v)}) or transition: cut",
        )
    repo = ref.preset.i2v_repo_id
    if require_weights and ref.source != "builtin" and repo is not None:
        try:
            require_cached(repo, spec, name=spec)
        except SetupError as exc:
            raise SetupError(
                f"{exc.message} (the image-to-video sibling, for chained shots)",
                hint=f"`mvgen models pull {spec} --i2v` on a machine with network access",
            ) from None


def analyze(job: Job, *, use_cache: bool = True) -> BeatGrid:
    if job.beats is not None:
        return override_grid(job.beats, job.audio.duration_s)
    from mvgen.audio.beats import analyze as analyze_audio

    return analyze_audio(job.audio, digest=job.audio_sha256, use_cache=use_cache)


def plan(job: Job, grid: BeatGrid) -> RenderPlan:
    try:
        return plan_video(
            job.shotlist.shots,
            grid,
            job.model.preset,
            model_name=job.model.name,
            extend_long=_i2v_at_hand(job.model),
        )
    except FieldError as exc:
        raise _located(job.shotlist, exc) from None


def _located(loaded: LoadedShotList, exc: FieldError) -> ConfigError:
    """A planner's FieldError as the user sees it: ``FILE:LINE:COL: field.path: message``."""
    return ConfigError(f"{locate(loaded, exc.loc)}: {loc_str(exc.loc)}: {exc.message}", hint=exc.hint)


@dataclass
class ShotOutcome:
    cache_key: str
    cached: bool  # found in the cache, not generated by this run


@dataclass
class RenderResult:
    out: Path
    manifest_path: Path
    manifest: dict[str, Any]
    generated: int  # shots with a take generated by this run (counts.py says the words)
    cached: int  # shots entirely from the cache
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    counts: RenderCounts | None = None  # slots, shots, generated, cached, takes (None: a preview)


def _cached_clip(cache: ShotCache, key: str) -> Path:
    entry = cache.get(key)
    if entry is None:
        raise GenerationError(f"cache entry {key} vanished during the render (was the cache cleared?)")
    return entry.clip


def _last_frame(
    cache: ShotCache, plan_: RenderPlan, keys: list[str | None], index: int,
    memo: dict[str, tuple[np.ndarray, str]],
) -> tuple[np.ndarray, str]:  # fmt: skip
    """The conditioning image of chained slot ``index`` and a hash of its pixels, which goes into
    its cache key: the last frame the video shows of the slot before it (a clip is generated to
    its model's next valid frame count, and the surplus is never shown, so this is not always the
    clip's own last frame). Decoded once per clip and frame (``memo``, keyed ``KEY@FRAME``)."""
    from mvgen.media.clips import read_clip

    prev, key = plan_.shots[index - 1], keys[index - 1]
    assert key is not None
    j = last_shown_frame(prev, plan_.fps, plan_.native_fps)
    ref = f"{key}@{j}"
    if ref not in memo:
        clip = read_clip(_cached_clip(cache, key))
        frame = clip[min(j, len(clip) - 1)].copy()
        memo[ref] = frame, hashlib.sha256(f"{frame.shape}".encode() + frame.tobytes()).hexdigest()
    return memo[ref]


def _anchor(cache: ShotCache, plan_: RenderPlan, keys: list[str | None], index: int, frames, anchors: dict):
    """Colour-anchor a chained shot's frames to the first shot of its run (``timeline.anchor_root``;
    see media/colour.py)."""
    from mvgen.media.colour import anchor_colours

    root = anchor_root(plan_, index)
    assert root is not None
    root_key = keys[root]
    assert root_key is not None
    if root_key not in anchors:
        anchors[root_key] = _anchor_stats(cache, plan_, root_key, root)
    return anchor_colours(frames, anchors[root_key])


def _anchor_stats(cache: ShotCache, plan_: RenderPlan, key: str, root: int):
    """The colours a run of chained links is anchored to: those of the second half of what its
    first slot shows, where that shot has settled into its prompt's colours (a first slot that is
    itself chained from another prompt turns into its own colours over its first half)."""
    from mvgen.media.clips import read_clip
    from mvgen.media.colour import colour_stats

    shown = plan_.shots[root].shown_frames
    clip = read_clip(_cached_clip(cache, key))[:shown]
    return colour_stats(clip[len(clip) // 2 :])


def _slot_clip(cache: ShotCache, key: str) -> tuple[Path, int]:
    """A cached clip and its frame count, from its record (counted from the file for a record
    without one)."""
    clip = _cached_clip(cache, key)
    n = _meta_of(cache, key).get("num_frames")
    if isinstance(n, int) and n > 0:
        return clip, n
    from mvgen.media.clips import clip_frame_count

    return clip, clip_frame_count(clip)


def _meta_of(cache: ShotCache, key: str) -> dict[str, Any]:
    entry = cache.get(key)
    try:
        return entry.meta() if entry is not None else {}
    except (OSError, ValueError):
        return {}


def _request_for(plan_: RenderPlan, shot, image: np.ndarray | None = None):
    from mvgen.generate.base import ShotRequest

    return ShotRequest(
        shot_id=shot.id,
        prompt=shot.prompt,
        negative=shot.negative,
        seed=shot.seed,
        width=plan_.gen_width,
        height=plan_.gen_height,
        num_frames=shot.num_frames,
        steps=plan_.steps,
        guidance=plan_.guidance,
        max_sequence_length=plan_.max_sequence_length,
        fps=plan_.native_fps,
        image=image,
        step_cache=plan_.step_cache,
        step_cache_threshold=plan_.step_cache_threshold,
        compile=plan_.compile,
        attention=plan_.attention,
    )


def _check_only(plan_: RenderPlan, only: set[str] | None, job: Job) -> None:
    if not only:
        return
    known = {s.id for s in plan_.shots}
    unknown = sorted(only - known)
    if unknown:
        raise ConfigError(
            f"--only: no shot with id {', '.join(map(repr, unknown))} in {job.shotlist.path}",
            hint=f"ids: {', '.join(sorted(known)[:20])}",
        )


class BackendPool:
    """One loaded model per (backend, model, device), kept across the jobs of a batch that share it
    and closed when no later job needs it, so memory is free before the next model loads."""

    def __init__(
        self, device: str = "auto", *, offload: str = "auto", dtype: str | None = None,
        ray_address: str | None = None, ray_workers: int | None = None,
    ) -> None:  # fmt: skip
        self.ray_address = ray_address  # --backend ray: where the workers are
        self.ray_workers = ray_workers
        self.device = device
        self.offload = offload
        self.dtype = dtype
        self._backends: dict[tuple[str, str], Any] = {}

    @staticmethod
    def key(model: ModelRef) -> tuple[str, str]:
        return (model.source, model.location)

    def get(self, model: ModelRef):
        from mvgen.generate import get_backend

        k = self.key(model)
        if k not in self._backends:
            # The local backend; with --backend ray it only names the model (cache keys): workers load it.
            self._backends[k] = get_backend(
                "local", model, device=self.device, offload=self.offload, dtype=self.dtype
            )
        return self._backends[k]

    def release_unless(self, keep: set[tuple[str, str]]) -> None:
        for k in list(self._backends):
            if k not in keep:
                self._backends.pop(k).close()

    def close(self) -> None:
        self.release_unless(set())


def never_stop() -> bool:
    return False


def _write_report(job: Job, plan_: RenderPlan, manifest: dict[str, Any], cache: ShotCache,
                  previous: dict[str, Any] | None, progress: ProgressCallback) -> dict[str, str] | None:  # fmt: skip
    """The contact sheet, beat plot and OUT.html (kept when the video was not re-encoded and they
    are all there). A failure here is a warning: the video and manifest are what the render is for."""
    from mvgen.report import report_paths, write_report

    paths = report_paths(job.out)
    if previous is not None and previous.get("report") and all(p.is_file() for p in paths.values()):
        return previous["report"]
    try:
        return write_report(job.out, plan_, analyze(job), job.audio.path, manifest, cache)
    except Exception as exc:  # noqa: BLE001
        log.debug("report failed", exc_info=True)
        progress(ProgressEvent("warning", message=f"report not written: {type(exc).__name__}: {exc}"))
        return None


@dataclass
class TakeResult:
    cached: bool  # another process had made it by the time its lock was ours
    seconds: float = 0.0
    score: dict[str, Any] | None = None  # take metrics and score (shots with several takes)
    colour_drift: dict[str, float] | None = None


def generate_take(gen, cache: ShotCache, plan_: RenderPlan, s, k: str, seed: int, *, ident: dict[str, str],
                  conditioning: str | None, image, regenerate: bool, anchor, on_start, on_step, notify) -> TakeResult:  # fmt: skip
    """Generate one take of a slot into the cache under its key's lock (or find that another
    process did). ``anchor`` colour-anchors a chained shot's frames; exceptions propagate."""
    from mvgen.locks import shot_lock
    from mvgen.media.clips import write_clip

    with shot_lock(k):
        cache.sweep(k)  # a killed writer's half-written folder for this key, if any
        # Another process may have generated it while we waited for its lock.
        if not regenerate and cache.get(k) is not None:
            return TakeResult(True)
        on_start()
        ts = time.monotonic()
        latents = cache.latents_path(k)
        if regenerate:
            latents.unlink(missing_ok=True)
        request = replace(_request_for(plan_, s, image), seed=seed)
        frames = gen.generate(request, on_step, latents_path=latents, notify=notify)
        drift = None
        if anchor is not None:
            frames, before, after = anchor(frames)
            drift = {"before": round(before, 3), "after": round(after, 3)}
        score = None
        if s.takes > 1:
            from mvgen.media.score import score_take

            score = score_take(frames, s.prompt)
        meta = {
            "shot": s.id, "prompt": s.prompt, "negative": s.negative, "seed": seed,
            "num_frames": int(frames.shape[0]), "width": int(frames.shape[2]), "height": int(frames.shape[1]),
            "fps": plan_.native_fps, "model": ident, "steps": plan_.steps, "guidance": plan_.guidance,
            "image_sha256": conditioning, "colour_drift": drift, "take_score": score,
            "step_cache": step_cache_label(plan_),
        }  # fmt: skip
        seconds = time.monotonic() - ts
        meta["seconds"] = round(seconds, 3)
        try:
            with cache.writer(k, meta) as folder:
                write_clip(folder / CLIP_NAME, frames, plan_.native_fps)
        except (OSError, MvgenError) as exc:
            if is_disk_full(exc):
                raise EncodeError(
                    f"disk full while storing shot {s.id!r} in the cache ({cache.root})",
                    hint="free space there (or set MVGEN_CACHE_DIR) and re-run: finished shots are kept",
                ) from None
            raise
        latents.unlink(missing_ok=True)
        return TakeResult(False, seconds, score, drift)


def _generate_on_ray(job: Job, plan_: RenderPlan, todo, keys: list[str | None], ident: dict[str, str],
                     cache: ShotCache, takes: TakeBook, regenerates, outcomes: dict[str, ShotOutcome],
                     slot_seconds: dict[int, float], conditioning: dict[int, str], failed: dict[str, str],
                     placement: dict[int, dict[str, Any]], pool: BackendPool, progress: ProgressCallback,
                     should_stop, keep_going: bool) -> None:  # fmt: skip
    """Generate ``todo`` on Ray workers (see distributed.py) and record what came back as the local
    loop would: keys, outcomes, takes, conditioning hashes; plus where each slot ran."""
    import os

    from mvgen.distributed import RayPool, make_groups
    from mvgen.estimate import work_units

    # Workers use the driver's cache path (shared where a shared file system mounts it there);
    # MVGEN_RAY_WORKER_CACHE_DIR names another (a node-local disk).
    rp = RayPool(job, device=pool.device, offload=pool.offload, dtype=pool.dtype, address=pool.ray_address,
                 workers=pool.ray_workers, worker_cache_dir=os.environ.get("MVGEN_RAY_WORKER_CACHE_DIR"))  # fmt: skip
    try:
        shared = rp.shared_cache(cache.root.parent)
        groups = make_groups(plan_, todo, keys, lambda s: work_units(plan_, s) * s.takes)
        progress(
            ProgressEvent(
                "info",
                message=f"Ray: {len(groups)} group(s) of shots on {len(rp.workers)} worker(s); "
                f"{'shared cache' if shared else 'clips come back through the object store'}",
            )
        )
        regen = [s.index for s in plan_.shots if regenerates(s)]
        plan_json = plan_.to_json()

        def submit_args(grp):
            # What a worker may not find in its own cache: the frame a group's first chained shot
            # continues, and the colour statistics of chain roots outside the group.
            frames: dict[str, tuple[Any, str]] = {}
            anchors: dict[str, Any] = {}
            for i in grp.slots:
                if plan_.shots[i].chain and i - 1 not in grp.slots and keys[i - 1] is not None:
                    _last_frame(cache, plan_, keys, i, frames)
                root = anchor_root(plan_, i)
                if root is not None and root not in grp.slots and keys[root] is not None:
                    anchors[keys[root]] = _anchor_stats(cache, plan_, keys[root], root)
            return plan_json, grp.slots, list(keys), ident, regen, anchors, frames, shared

        ids = [s.id for s in plan_.shots]
        results, failures, attempts = rp.run(groups, submit_args, ids, progress, should_stop, keep_going)
    finally:
        rp.close()
    failed.update(failures)
    for r in sorted(results, key=lambda r: r.index):
        for k, (name, clip, meta) in r.clips.items():  # not a shared cache: store what came back
            if cache.get(k) is None:
                with cache.writer(k, meta) as folder:
                    (folder / name).write_bytes(clip)  # the worker's entry may be an older format
        keys[r.index] = r.key
        if r.image_sha256 is not None:
            conditioning[r.index] = r.image_sha256
        if len(r.candidates) > 1:
            takes.metrics.update(r.metrics)
            takes.chosen[r.index] = (r.take, r.candidates)
            for k in r.candidates:
                takes.metrics_of(k, plan_.shots[r.index].prompt)
        for k in r.generated:
            outcomes[k] = ShotOutcome(k, False)
        outcomes.setdefault(r.key, ShotOutcome(r.key, True))
        if r.generated:
            slot_seconds[r.index] = r.seconds
        placement[r.index] = {"pid": r.pid, "worker": r.worker, "started": round(r.started, 3),
                              "finished": round(r.finished, 3), "attempts": attempts.get(r.index, 1)}  # fmt: skip


def _audio_json(job: Job, plan_: RenderPlan) -> dict[str, Any]:
    return {
        "path": str(job.audio.path),
        "sha256": job.audio_sha256,
        "duration_s": round(job.audio.duration_s, 6),
        "tempo_bpm": round(plan_.tempo_bpm, 3),
        "beats_source": plan_.beats_source,
        "sample_rate": job.audio.sample_rate,
        "channels": job.audio.channels,
    }


def _video_json(path: Path, plan_: RenderPlan) -> dict[str, Any]:
    return {
        "path": str(path),
        "width": plan_.width,
        "height": plan_.height,
        "fps": plan_.fps,
        "frames": plan_.total_frames,
        "duration_s": round(plan_.duration_s, 6),
        "gen_width": plan_.gen_width,
        "gen_height": plan_.gen_height,
        "native_fps": plan_.native_fps,
    }


def _write_otio(job: Job, plan_: RenderPlan, video: Path, path: Path, rows: list[dict[str, Any]],
                progress: ProgressCallback) -> Path:  # fmt: skip
    from mvgen.otio_export import media_folder, write_otio

    progress(ProgressEvent("info", message=f"writing {path.name} and {media_folder(path).name}/"))
    title = job.shotlist.shots.title or job.shotlist.path.stem
    return write_otio(path, video, job.audio.path, plan_, rows, title)


def render_preview(
    job: Job,
    *,
    plan_: RenderPlan | None = None,
    progress: ProgressCallback = null_progress,
    should_stop: Callable[[], bool] = never_stop,
    otio: Path | None = None,
) -> RenderResult:
    """Write the job's animatic (``OUT.preview.mp4`` + ``OUT.preview.json``): every slot a card, cut
    and blended exactly as the render would, with the real audio; no model runs."""
    from mvgen.media.preview import preview_path
    from mvgen.media.preview import render_preview as draw

    t0 = time.monotonic()
    plan_ = plan_ or plan(job, analyze(job))
    out = preview_path(job.out)
    progress(
        ProgressEvent(
            "stage", stage="preview", total=plan_.total_frames,
            message=f"animatic of {len(plan_.shots)} slots, {plan_.total_frames} frames to {out.name}",
        )
    )  # fmt: skip

    def on_frame(frame: int) -> None:
        if frame % 48 == 0 or frame == plan_.total_frames - 1:
            progress(ProgressEvent("encode", step=frame + 1, steps=plan_.total_frames))
            _stop_check(should_stop)

    info = draw(plan_, job.audio, out, on_frame=on_frame)
    seconds = time.monotonic() - t0
    manifest = {
        "mvgen_version": __version__,
        "preview": True,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "shotlist": str(job.shotlist.path),
        "audio": _audio_json(job, plan_),
        "video": _video_json(out, plan_),
        "fit": plan_.fit,
        "shots": [
            {
                "id": s.id,
                "prompt": s.prompt,
                "seed": s.seed,
                "start_s": round(s.start_s, 6),
                "end_s": round(s.end_s, 6),
                "start_frame": s.start_frame,
                "end_frame": s.end_frame,
                "num_frames": s.num_frames,
                "transition": s.transition,
                "blend_frames": s.blend_frames,
                "takes": s.takes,
            }
            for s in plan_.shots
        ],  # fmt: skip
        "timings_s": {"total_s": round(seconds, 3)},
        "verified": info,
    }
    if otio is not None:
        manifest["otio"] = str(_write_otio(job, plan_, out, otio, manifest["shots"], progress))
    path = manifest_path_for(out)
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    progress(
        ProgressEvent(
            "done", seconds=seconds, message=str(out), extra={"generated": 0, "cached": 0, "preview": True}
        )
    )
    return RenderResult(out, path, manifest, 0, 0, seconds)


def model_identity(gen, plan_: RenderPlan) -> dict[str, str]:
    """The model's identity for cache keys; with chained shots, the image-to-video sibling's revision too."""
    ident = gen.identity()
    return {**ident, "i2v_revision": gen.i2v_revision()} if any(s.chain for s in plan_.shots) else ident


def clip_key(ident: dict[str, str], plan_: RenderPlan, shot, *, seed: int | None = None,
             image_sha256: str | None = None) -> str:  # fmt: skip
    """The cache key of one take of a planned shot (``seed``: the take's; default the shot's)."""
    return shot_key(
        model_id=ident["id"], model_revision=ident["revision"], prompt=shot.prompt, negative=shot.negative,
        seed=shot.seed if seed is None else seed, width=plan_.gen_width, height=plan_.gen_height,
        num_frames=shot.num_frames, steps=plan_.steps, guidance=plan_.guidance,
        max_sequence_length=plan_.max_sequence_length, image_sha256=image_sha256,
        i2v_revision=ident.get("i2v_revision") if image_sha256 is not None else None,
        step_cache=step_cache_label(plan_),
        colour_anchor=anchor_root(plan_, shot.index) is not None if image_sha256 is not None else None,
    )  # fmt: skip


def step_cache_label(plan_: RenderPlan) -> str | None:
    """The step cache's setting as the cache key and the shot records hold it (None: no cache)."""
    return f"{plan_.step_cache}:{plan_.step_cache_threshold:g}" if plan_.step_cache != "none" else None


def reuse_longer_clips(plan_: RenderPlan, preset, ident: dict[str, str], cache: ShotCache,
                       regenerates: Callable[[Any], bool]) -> RenderPlan:  # fmt: skip
    """The plan with every shot that is not in the cache at its planned length, but is at a longer
    one (it filled a longer slot before: another place in the list, a longer length), keeping that
    clip: its slots show the clip's beginning, at the model's own speed. So moving or shortening a
    shot costs no GPU time and keeps its look; a shot whose slot outgrew every clip of it is
    generated again, at its new length (never slowed down to fit). ``preset``: the model's frame rule."""
    frames_of: dict[int, int] = {}  # source shot -> the frames its clip has
    for s in plan_.shots:
        if s.chain or s.source_index in frames_of:
            continue
        frames_of[s.source_index] = s.num_frames
        if regenerates(s):
            continue

        def cached_at(frames: int, s=s) -> bool:
            probe = replace(s, num_frames=frames)
            return all(
                cache.get(clip_key(ident, plan_, probe, seed=seed)) is not None for seed in s.take_seeds()
            )

        if cached_at(s.num_frames):
            continue
        longer = (f for f in range(s.num_frames + 1, preset.max_frames + 1) if preset.valid_frames(f) == f)
        frames_of[s.source_index] = next((f for f in longer if cached_at(f)), s.num_frames)
    shots = tuple(s if s.chain else replace(s, num_frames=frames_of[s.source_index]) for s in plan_.shots)
    return replace(plan_, shots=shots) if shots != plan_.shots else plan_


def known_keys(plan_: RenderPlan, ident: dict[str, str], cache: ShotCache, takes: TakeBook,
               regenerates: Callable[[Any], bool], conditioning: dict[int, str],
               last_frames: dict[str, tuple[Any, str]]) -> list[str | None]:  # fmt: skip
    """Each slot's clip key as far as it can be known before generating: the chosen take's for a
    shot with takes once all its takes are cached; a chained shot's once the clip before it is
    cached (its key includes that clip's last frame). None: decided when the slot's turn comes."""
    keys: list[str | None] = []
    for s in plan_.shots:
        image_sha = None
        if s.chain:
            prev = keys[-1]
            if prev is None or regenerates(plan_.shots[s.index - 1]) or cache.get(prev) is None:
                keys.append(None)
                continue
            image_sha = conditioning[s.index] = _last_frame(cache, plan_, keys, s.index, last_frames)[1]
        candidates = [clip_key(ident, plan_, s, seed=seed, image_sha256=image_sha) for seed in s.take_seeds()]
        if s.takes == 1:
            keys.append(candidates[0])
        elif not regenerates(s) and all(cache.get(k) is not None for k in candidates):
            keys.append(takes.choose(s, candidates))
        else:
            keys.append(None)
    return keys


# Bump when assembly changes the output for the same inputs (encoder settings, retiming...).
# 2: every clip's last frame is used; 3: clips scaled by ffmpeg, one-pass mux; 4: clips played at
# the model's native speed (surplus frames unplayed), the video tagged as mvgen's
ASSEMBLY_VERSION = 4


def render_key(plan_: RenderPlan, keys: list[str], audio_sha256: str) -> str:
    """Everything that decides the output file's bytes, hashed."""
    payload = json.dumps(
        {"plan": plan_.to_json(), "clips": keys, "audio": audio_sha256, "assembly": ASSEMBLY_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _up_to_date(job: Job, rkey: str) -> dict[str, Any] | None:
    """The previous manifest when ``job.out`` is exactly what this render would write again."""
    try:
        previous = json.loads(job.manifest_path.read_text(encoding="utf-8"))
        recorded = previous["output"]
        if recorded["render_key"] != rkey or not job.out.is_file():
            return None
        if sha256_file(job.out) != recorded["sha256"]:
            return None
        return previous
    except (OSError, ValueError, KeyError, TypeError):
        return None


class PartialRender(MvgenError):
    """--keep-going: some shots of a job failed, so its video was not written (exit 3)."""

    exit_code = ExitCode.PARTIAL

    def __init__(self, message: str, *, failed: dict[str, str], generated: int, cached: int) -> None:
        super().__init__(message, hint="re-run to retry the failed shots; finished ones are cached")
        self.failed = failed
        self.generated = generated
        self.cached = cached


def render(
    job: Job,
    *,
    force: bool = False,
    only: set[str] | None = None,
    backend: str = "local",
    device: str = "auto",
    offload: str = "auto",
    dtype: str | None = None,
    progress: ProgressCallback = null_progress,
    cache: ShotCache | None = None,
    pool: BackendPool | None = None,
    plan_: RenderPlan | None = None,
    wait: bool = False,
    keep_going: bool = False,
    should_stop: Callable[[], bool] = never_stop,
    planned_s: float = 0.0,
    otio: Path | None = None,
    ray_address: str | None = None,
    ray_workers: int | None = None,
    overlap: bool = True,
) -> RenderResult:
    """Render a prepared job end to end and write ``OUT.mp4`` and ``OUT.json``.

    With ``overlap`` (local backend) the assembly runs beside the generation: it encodes each slot
    as soon as that slot's clip is ready, while the model works on the next shots.

    Holds the job's output lock for the whole render (``BusyError`` when another process has it and
    ``wait`` is False) and a per-shot lock while generating, so concurrent renders never generate
    the same shot twice. ``should_stop`` is polled at safe points (between denoising steps, between
    shots, between encoded frames): when it turns True the render stops with ``Interrupted`` and
    nothing half-written is left behind.
    """
    from mvgen.locks import job_lock

    own_pool = pool is None
    pool = pool or BackendPool(
        device, offload=offload, dtype=dtype, ray_address=ray_address, ray_workers=ray_workers
    )
    try:
        with job_lock(
            job.out,
            wait=wait,
            on_wait=lambda: progress(
                ProgressEvent(
                    "info", message=f"{job.out.name}: waiting for another mvgen process to finish it"
                )
            ),
        ):
            return _render_locked(job, force, only, backend, progress, cache or ShotCache(), pool, plan_,
                                  keep_going, should_stop, planned_s, otio, overlap)  # fmt: skip
    finally:
        if own_pool:
            pool.close()


def _stop_check(should_stop: Callable[[], bool]) -> None:
    if should_stop():
        raise Interrupted("interrupted; finished shots are cached, re-run to resume")


class _Assembly:
    """The assembly in a process of its own (:class:`mvgen.media.assembler.AssemblyProcess`).
    Slots are handed over as their clips become final (their takes chosen), so with ``overlap`` it
    starts before the generation and encodes the song's first minutes while the model makes the
    last ones, at a lower CPU priority and without sharing the model's interpreter; otherwise it
    starts once every clip is ready. Its progress is reported only once the generation is over
    (``finish``, on the calling thread), so the two never write to the display at once."""

    def __init__(self, plan_: RenderPlan, job: Job, keys: list[str | None], outcomes: dict[str, ShotOutcome],
                 cache: ShotCache, pending: set[int], progress: ProgressCallback,
                 should_stop: Callable[[], bool], *, overlap: bool) -> None:  # fmt: skip
        from mvgen.media.assembler import AssemblyProcess

        self.plan, self.keys, self.outcomes, self.cache = plan_, keys, outcomes, cache
        self.pending = set(pending)  # slots still to be generated in this run
        self.waiting = set(range(len(plan_.shots)))  # slots not handed over yet
        self._progress, self._should_stop = progress, should_stop
        self.proc = AssemblyProcess(plan_, job.audio, job.out, background=overlap)
        self.publish()

    @property
    def done(self) -> int:
        """Output frames encoded so far."""
        return self.proc.done

    def slot_done(self, index: int) -> None:
        self.pending.discard(index)
        self.publish()

    def publish(self, *, all_final: bool = False) -> None:
        """Hand over every slot whose clip is now final (``all_final``: the generation is over)."""
        for i in sorted(self.waiting):
            k = self.keys[i]
            if not all_final and (i in self.pending or k is None or k not in self.outcomes):
                continue
            assert k is not None
            self.waiting.discard(i)
            self.proc.publish(i, *_slot_clip(self.cache, k))

    def finish(self) -> dict[str, object]:
        """Wait for the encode, reporting its progress; its result, or its error raised here."""
        self.publish(all_final=True)
        shown, shown_at = -1, 0.0
        for done in self.proc.frames():  # every 0.25 s, and once at the end
            _stop_check(self._should_stop)
            now = time.monotonic()
            if done != shown and (now - shown_at >= 1.0 or done == self.plan.total_frames):
                self._progress(ProgressEvent("encode", step=done, steps=self.plan.total_frames))
                shown, shown_at = done, now
        return self.proc.result()

    def cancel(self) -> None:
        """Stop the encode and wait until its temp file is gone (the old output stays untouched)."""
        self.proc.cancel()


def _render_locked(
    job: Job,
    force: bool,
    only: set[str] | None,
    backend: str,
    progress: ProgressCallback,
    cache: ShotCache,
    pool: BackendPool,
    plan_: RenderPlan | None,
    keep_going: bool,
    should_stop: Callable[[], bool],
    planned_s: float,
    otio: Path | None = None,
    overlap: bool = True,
) -> RenderResult:
    t_start = time.monotonic() - planned_s  # the job's time includes its up-front analysis
    timings: dict[str, float] = {}
    # We hold this output's lock: temp files beside it can only be a killed run's leftovers.
    from mvgen.report import report_paths

    for sidecar in (job.out, job.manifest_path, *report_paths(job.out).values()):
        sweep_stale_temps(sidecar.parent, sidecar.name)
    if otio is not None:
        from mvgen.otio_export import media_folder

        sweep_stale_temps(otio.parent, otio.name)
        sweep_stale_temps(otio.parent, media_folder(otio).name)
    # No progress output before the plan exists: a bad track or shot list gets one error line only.
    t0 = time.monotonic()
    if plan_ is None:  # a batch plans its jobs up front and passes the plan in
        plan_ = plan(job, analyze(job))
    _check_only(plan_, only, job)
    timings["analyze_plan_s"] = planned_s + time.monotonic() - t0  # planned_s: done up front by a batch
    progress(
        ProgressEvent(
            "stage",
            stage="plan",
            shotlist=str(job.shotlist.path),
            message=(
                f"{job.audio.path.name}: {plan_.tempo_bpm:.1f} BPM, {plan_.duration_s:.2f}s; {len(plan_.shots)} slots "
                f"at {plan_.width}x{plan_.height} {plan_.fps:g} fps; model {job.model.name}"
            ),
        )
    )

    gen = pool.get(job.model)
    ident = model_identity(gen, plan_)

    def key_for(s, image_sha256: str | None = None, seed: int | None = None) -> str:
        return clip_key(ident, plan_, s, seed=seed, image_sha256=image_sha256)

    def regenerates(s) -> bool:
        return force or bool(only and s.id in only)

    plan_ = reuse_longer_clips(plan_, job.model.preset, ident, cache, regenerates)
    takes = TakeBook(cache, plan_)
    conditioning: dict[int, str] = {}  # slot index -> hash of its conditioning frame
    anchors: dict[str, tuple[Any, Any]] = {}  # chain root's key -> its colour statistics
    last_frames: dict[str, tuple[Any, str]] = {}  # clip key -> (its last frame, that frame's hash)
    keys = known_keys(plan_, ident, cache, takes, regenerates, conditioning, last_frames)
    outcomes: dict[str, ShotOutcome] = {}
    slot_seconds: dict[int, float] = {}  # slot index -> seconds spent generating its take(s) this run
    todo = []  # one slot per shot to generate
    queued: set[str] = set()
    first_of: dict[tuple[int, int], int] = {}  # a shot whose key waits on its takes -> its first slot
    repeats: dict[int, list[Any]] = {}  # that first slot -> the later slots repeating its shot (fit: loop)
    for k, s in zip(keys, plan_.shots, strict=True):
        if k is not None and (k in outcomes or k in queued):
            continue
        if k is not None and not regenerates(s) and cache.get(k) is not None:
            outcomes[k] = ShotOutcome(k, True)
            progress(ProgressEvent("shot_cached", shot=s.id, index=s.index, total=len(plan_.shots)))
        elif k is None and not s.chain and (s.source_index, s.num_frames) in first_of:
            repeats.setdefault(first_of[(s.source_index, s.num_frames)], []).append(s)
        else:
            todo.append(s)
            if k is not None:
                queued.add(k)
            elif not s.chain:
                first_of[(s.source_index, s.num_frames)] = s.index
    regenerate: set[str] = set()

    def settle_repeats(first: int) -> None:
        """The slots repeating the shot of slot ``first`` use the clip (and take) chosen for it."""
        for r in repeats.get(first, ()):
            keys[r.index] = keys[first]
            if first in takes.chosen:
                takes.chosen[r.index] = takes.chosen[first]
            if assembly is not None:
                assembly.slot_done(r.index)

    pending_takes = sum(
        s.takes
        if s.chain
        else sum(regenerates(s) or cache.get(key_for(s, None, seed)) is None for seed in s.take_seeds())
        for s in todo
    )
    extra = f" ({plural(pending_takes, 'take')})" if pending_takes != len(todo) else ""
    progress(
        ProgressEvent(
            "stage",
            stage="generate",
            total=len(todo),
            message=f"{plural(len(todo), 'shot')} to generate{extra}, {len(outcomes)} cached",
        )
    )
    t0 = time.monotonic()
    if todo and not gen.loaded and backend != "ray":  # Ray: each worker loads its own
        progress(ProgressEvent("info", message=f"loading model {job.model.name}"))
        gen.load()  # before the first shot, so that its seconds are its own
        timings["load_model_s"] = time.monotonic() - t0
    # The prior pace reads the cache's records: only worth it when there is something to generate.
    prior = (
        prior_rate(cache, ident["id"], job.model.preset.step_cost_s, step_cache_label(plan_))
        if todo
        else None
    )
    eta = EtaClock(plan_, todo, prior)
    failed: dict[str, str] = {}

    def produce(s, n: int, k: str, seed: int, take: int, image) -> bool:
        """Generate one take of a slot (or find that another process did); False when it failed
        and --keep-going carries on."""
        label = f"take {take + 1}/{s.takes}: " if s.takes > 1 else ""

        def on_start() -> None:
            progress(
                ProgressEvent(
                    "shot_start", shot=s.id, index=n, total=len(todo), steps=plan_.steps,
                    message=label + s.prompt, extra={"take": take + 1, "takes": s.takes},
                )
            )  # fmt: skip
            eta.start()

        def on_step(step: int, steps: int) -> None:
            progress(
                ProgressEvent(
                    "step", shot=s.id, index=n, total=len(todo), step=step, steps=steps,
                    extra=eta.at_step(s, step, steps),
                )
            )  # fmt: skip
            _stop_check(should_stop)

        def notify(message: str) -> None:
            progress(ProgressEvent("warning", shot=s.id, message=message))

        anchored = anchor_root(plan_, s.index) is not None
        anchor = (lambda frames: _anchor(cache, plan_, keys, s.index, frames, anchors)) if anchored else None
        try:
            r = generate_take(gen, cache, plan_, s, k, seed, ident=ident, conditioning=conditioning.get(s.index),
                              image=image, regenerate=k in regenerate, anchor=anchor, on_start=on_start,
                              on_step=on_step, notify=notify)  # fmt: skip
        except Interrupted:
            raise
        except Exception as exc:
            err = (
                exc
                if isinstance(exc, MvgenError)
                else GenerationError(f"shot {s.id!r}: generation failed: {type(exc).__name__}: {exc}")
            )
            if not keep_going:
                raise err from exc
            failed[s.id] = err.message
            progress(ProgressEvent("shot_failed", shot=s.id, index=n, total=len(todo), message=err.message))
            return False
        if r.cached:
            outcomes[k] = ShotOutcome(k, True)
            progress(ProgressEvent("shot_cached", shot=s.id, index=n, total=len(todo)))
            eta.skip(s)
            return True
        if s.takes > 1:
            takes.metrics[k] = r.score
        outcomes[k] = ShotOutcome(k, False)
        slot_seconds[s.index] = slot_seconds.get(s.index, 0.0) + r.seconds
        eta.done(s, r.seconds)
        progress(
            ProgressEvent(
                "shot_done", shot=s.id, index=n, total=len(todo), seconds=r.seconds,
                extra={"take": take + 1, "takes": s.takes, **eta.remaining()},
            )
        )  # fmt: skip
        return True

    placement: dict[int, dict[str, Any]] = {}  # Ray: slot index -> where and when it was generated
    assembly = None  # with overlap: started now, fed as slots become final

    def start_assembly(pending: set[int], early: bool) -> _Assembly:
        return _Assembly(plan_, job, keys, outcomes, cache, pending, progress, should_stop, overlap=early)

    if overlap and todo and backend != "ray":
        assembly = start_assembly({s.index for s in todo}, True)
    try:
        if backend == "ray" and todo:
            _generate_on_ray(job, plan_, todo, keys, ident, cache, takes, regenerates, outcomes, slot_seconds,
                             conditioning, failed, placement, pool, progress, should_stop, keep_going)  # fmt: skip
            for first in repeats:
                if keys[first] is not None:
                    settle_repeats(first)
        for n, s in enumerate(todo if backend != "ray" else []):
            _stop_check(should_stop)
            image, image_sha = None, None
            if s.chain:
                prev = keys[s.index - 1]
                if prev is None or prev not in outcomes:  # the shot before it failed (--keep-going)
                    failed[s.id] = f"shot {s.id!r}: not generated: the shot it chains from failed"
                    progress(
                        ProgressEvent(
                            "shot_failed", shot=s.id, index=n, total=len(todo), message=failed[s.id]
                        )
                    )
                    continue
                image, image_sha = _last_frame(cache, plan_, keys, s.index, last_frames)
                conditioning[s.index] = image_sha
            candidates = [key_for(s, image_sha, seed) for seed in s.take_seeds()]
            if regenerates(s):
                regenerate.update(candidates)
            ok = True
            for take, (k, seed) in enumerate(zip(candidates, s.take_seeds(), strict=True)):
                if k in outcomes:  # the same picture as an earlier slot's (a chain repeated by a loop)
                    continue
                if k not in regenerate and cache.get(k) is not None:
                    outcomes[k] = ShotOutcome(k, True)
                    eta.skip(s)
                    continue
                ok = produce(s, n, k, seed, take, image) and ok
            if ok:
                keys[s.index] = takes.choose(s, candidates) if s.takes > 1 else candidates[0]
                settle_repeats(s.index)
            if assembly is not None:
                assembly.slot_done(s.index)
        timings["generate_s"] = time.monotonic() - t0
        made = {k for k, o in outcomes.items() if not o.cached}  # the takes this run generated
        slot_takes = [takes.chosen[s.index][1] if s.index in takes.chosen else ([k] if k else None)
                      for k, s in zip(keys, plan_.shots, strict=True)]  # fmt: skip
        counts = count_render(slot_takes, made)
        if failed:
            raise PartialRender(
                f"{job.shotlist.path}: {plural(len(failed), 'shot')} failed ({', '.join(sorted(failed))}); "
                f"{job.out.name} was not written",
                failed=failed,
                generated=counts.generated,
                cached=counts.cached,
            )
        _stop_check(should_stop)
    except BaseException:
        if assembly is not None:
            assembly.cancel()
        raise

    t0 = time.monotonic()
    overlapped = assembly is not None
    rkey = render_key(plan_, keys, job.audio_sha256)
    previous = None if (force or only or todo) else _up_to_date(job, rkey)
    if previous is not None:
        progress(
            ProgressEvent(
                "stage",
                stage="assemble",
                message=f"{job.out.name} is up to date (same plan, clips and audio); not re-encoded",
            )
        )
        stream_info, out_sha = previous["verified"], previous["output"]["sha256"]
    else:
        progress(
            ProgressEvent(
                "stage", stage="assemble", total=plan_.total_frames,
                message=f"encoding {plan_.total_frames} frames to {job.out.name}"
                + (f" ({assembly.done} already encoded beside the generation)" if assembly is not None else ""),
            )
        )  # fmt: skip
        assembly = assembly or start_assembly(set(), False)
        try:
            stream_info = assembly.finish()
        except BaseException:
            assembly.cancel()  # e.g. Ctrl-C while waiting: the encoder thread stops too
            raise
        out_sha = sha256_file(job.out)
    timings["assemble_s"] = time.monotonic() - t0

    shot_rows = []
    for k, s, cands in zip(keys, plan_.shots, slot_takes, strict=True):
        seconds = slot_seconds.get(s.index, 0.0)  # generating this slot's takes, in this run
        chosen = takes.manifest_fields(s)
        shot_rows.append({
            "id": s.id, "prompt": s.prompt, "negative": s.negative,
            "seed": s.take_seeds()[chosen["take"] - 1],
            "start_s": round(s.start_s, 6), "end_s": round(s.end_s, 6),
            "start_frame": s.start_frame, "end_frame": s.end_frame, "num_frames": s.num_frames,
            "play_frames": s.shown_frames,
            "repeat": s.repeat, "segment": s.segment, "transition": s.transition,
            "blend_frames": s.blend_frames,
            "image_sha256": conditioning.get(s.index), "colour_drift": _meta_of(cache, k).get("colour_drift"),
            "cache_key": k, "cached": not made.intersection(cands or ()), "seconds": round(seconds, 3), **chosen,
            **({"ray": placement[s.index]} if s.index in placement else {}),
        })  # fmt: skip
    total = time.monotonic() - t_start
    manifest = {
        "mvgen_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "shotlist": str(job.shotlist.path),
        "model": {**ident, "family": job.model.preset.family},
        "audio": _audio_json(job, plan_),
        "video": _video_json(job.out, plan_),
        "generation": {
            "steps": plan_.steps,
            "guidance": plan_.guidance,
            "backend": backend,
            "overlap": overlapped,
            "quality": plan_.quality,
            "cache": plan_.step_cache,
            "compile": plan_.compile,
            "attention": plan_.attention,
        },  # fmt: skip
        "fit": plan_.fit,
        "totals": counts.to_json(),
        "shots": shot_rows,
        "timings_s": {k: round(v, 3) for k, v in {**timings, "total_s": total}.items()},
        "output": {"sha256": out_sha, "render_key": rkey, "reencoded": previous is None},
        "verified": stream_info,
    }
    manifest["report"] = _write_report(job, plan_, manifest, cache, previous, progress)
    if otio is not None:
        manifest["otio"] = str(_write_otio(job, plan_, job.out, otio, shot_rows, progress))
    try:
        atomic_write_text(job.manifest_path, json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        if is_disk_full(exc):
            raise EncodeError(f"{job.manifest_path}: disk full while writing the manifest") from None
        raise
    progress(
        ProgressEvent(
            "done", seconds=total, message=str(job.out),
            extra={**counts.to_json(), "up_to_date": previous is not None},
        )
    )  # fmt: skip
    return RenderResult(job.out, job.manifest_path, manifest, counts.generated, counts.cached, total, timings,
                        counts=counts)  # fmt: skip
