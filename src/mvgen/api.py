"""What a script or notebook calls. Everything the CLI does goes through these functions.

from mvgen import api
result = api.render_video("shots.yaml", audio="track.wav", model="tiny")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mvgen import pipeline, prepare
from mvgen.audio.grid import BeatGrid
from mvgen.batch import BatchResult, with_otio_checked
from mvgen.batch import run_batch as render_batch  # several shot lists, a status each (see `mvgen batch`)
from mvgen.options import GridOptions, RenderOptions
from mvgen.pipeline import DEFAULTS, RenderResult, never_stop
from mvgen.prepare import Job
from mvgen.prepare import prepare as load_project  # checks a shot list and all it names (prepare.py)
from mvgen.progress import ProgressCallback, null_progress
from mvgen.timeline import RenderPlan

__all__ = [
    "BatchResult",
    "GridOptions",
    "Job",
    "RenderOptions",
    "RenderResult",
    "analyze_audio",
    "beat_grid",
    "cut_sheet",
    "load_project",
    "pick_take",
    "plot_grid",
    "plan_video",
    "render",
    "render_batch",
    "render_video",
]


def analyze_audio(path: str | Path, *, use_cache: bool = True, grid: GridOptions | None = None) -> BeatGrid:
    """The beat grid of an audio file (tempo, beats, downbeats, sections), or the grid that
    ``grid`` (a fixed bpm / a beats file) gives for it."""
    from mvgen.audio.beatsfile import override_grid
    from mvgen.audio.probe import probe_audio

    info = probe_audio(path)
    override = prepare.resolve_override(None, grid)
    if override is not None:
        return override_grid(override, info.duration_s)
    from mvgen.audio.beats import analyze

    return analyze(info, use_cache=use_cache)


def beat_grid(job: Job) -> BeatGrid:
    """The beat grid a checked job is cut to: its override, or the (cached) analysis of its track."""
    return prepare.analyze(job)


def plan_video(job: Job, grid: BeatGrid | None = None) -> RenderPlan:
    """The cut sheet of a checked job (on ``grid`` when given, else on ``beat_grid(job)``)."""
    return prepare.plan(job, grid if grid is not None else prepare.analyze(job))


def cut_sheet(job: Job, plan: RenderPlan):
    """The plan with each slot's cache status, estimated GPU seconds and warnings (``mvgen plan``)."""
    from mvgen.cache import ShotCache
    from mvgen.cutsheet import cut_sheet as build
    from mvgen.generate import get_backend
    from mvgen.generate.tiny import tiny_root
    from mvgen.keys import ModelIdentity
    from mvgen.render.state import reuse_longer_clips

    ident = None
    if (
        job.model.source != "builtin"
        or (tiny_root(job.model.preset.family) / "t2v" / "model_index.json").is_file()
    ):
        # reads the model folders' fingerprints, loads nothing
        ident = ModelIdentity.of(get_backend("local", job.model), plan)
    preset = job.model.preset
    cache = ShotCache()
    if ident is not None:  # as the render will: a longer clip of a shot in the cache is kept
        plan = reuse_longer_clips(plan, preset, ident, cache, lambda s: False)
    return build(plan, ident, cache, max_frames=preset.max_frames, step_cost_s=preset.step_cost_s)


def plot_grid(audio: str | Path, grid: BeatGrid, png: str | Path, *, plan: RenderPlan | None = None) -> Path:
    """Draw the grid (and a plan's cuts) over the track into ``png``; see ``mvgen beats --plot``."""
    from mvgen.errors import ConfigError
    from mvgen.media.plot import plot_grid as draw

    cuts = [(s.start_s, s.id) for s in plan.shots[1:]] if plan is not None else []
    try:
        return draw(Path(audio), grid, Path(png), cuts=cuts)
    except OSError as exc:
        raise ConfigError(
            f"{png}: cannot write the plot: {exc.strerror or exc}", hint="pass --plot a writable path"
        ) from None


def pick_take(shots: str | Path, shot_id: str, take: int) -> tuple[int, Path]:
    """Pin take ``take`` (1-based) of a shot: write its seed and ``takes: 1`` into the shot list, so
    every later render uses that take (from the cache: nothing is generated). Returns (seed, file)."""
    from mvgen.config.edit import set_shot_keys
    from mvgen.config.loader import load_shotlist, locate
    from mvgen.errors import ConfigError
    from mvgen.files import atomic_write_text
    from mvgen.timeline import take_seed

    loaded = load_shotlist(shots)
    ids = loaded.shots.shot_ids()
    if shot_id not in ids:
        raise ConfigError(f"{loaded.path}: no shot with id {shot_id!r}", hint=f"ids: {', '.join(ids[:20])}")
    i = ids.index(shot_id)
    shot, gen = loaded.shots.shots[i], loaded.shots.generation
    takes = shot.takes or gen.takes
    if not 1 <= take <= takes:
        pinned = takes == 1 and shot.takes == 1 and shot.seed is not None
        raise ConfigError(
            f"{locate(loaded, ('shots', i))}: shot {shot_id!r} has {takes} take(s); TAKE must be 1 to {takes} (got {take})",
            hint=f"it is pinned (seed {shot.seed}): remove its `seed:` and `takes:` to choose again"
            if pinned
            else "set `takes:` on the shot or in `generation:` to render more takes",
        )
    seed = take_seed(shot.seed if shot.seed is not None else gen.seed + i, take - 1)
    text = set_shot_keys(loaded, i, {"seed": seed, "takes": 1})
    try:
        atomic_write_text(loaded.path, text)
    except OSError as exc:
        raise ConfigError(f"{loaded.path}: cannot write the shot list: {exc.strerror or exc}") from None
    return seed, loaded.path


def render(
    shots: str | Path,
    options: RenderOptions = DEFAULTS,
    *,
    progress: ProgressCallback = null_progress,
    should_stop: Callable[[], bool] = never_stop,
) -> RenderResult:
    """Render one shot list to ``OUT.mp4`` + ``OUT.json`` (or, with ``options.preview``, its
    animatic), with every option the CLI has (``RenderOptions``). Raises the job's ``MvgenError``
    (``PartialRender`` when shots failed under ``keep_going``)."""
    options = with_otio_checked(options, 1)
    job = prepare.prepare_options(shots, options)
    if options.preview:
        return pipeline.render_preview(job, progress=progress, should_stop=should_stop, otio=options.otio)
    return pipeline.render(job, options, progress=progress, should_stop=should_stop)


def render_video(
    shots: str | Path,
    *,
    audio: str | None = None,
    out: str | None = None,
    model: str | None = None,
    device: str = "auto",
    offload: str = "auto",
    dtype: str | None = None,
    force: bool = False,
    only: set[str] | None = None,
    progress: ProgressCallback = null_progress,
    backend: str | None = None,
    ray_address: str | None = None,
    ray_workers: int | None = None,
) -> RenderResult:
    """``render`` with the common options as keywords. ``offload``: auto | none | model | sequential
    (CUDA memory levers); ``dtype``: override the preset's (CUDA only); ``backend``: local | ray
    (default: the shot list's ``backend:``), with ``ray_address`` (None: a local Ray started on
    demand; "auto": the running cluster) and ``ray_workers`` (default: one per GPU, else per CPU)."""
    options = RenderOptions(
        audio=audio, out=out, model=model, device=device, offload=offload, dtype=dtype, force=force,
        only=frozenset(only or ()), backend=backend, ray_address=ray_address, ray_workers=ray_workers,
    )  # fmt: skip
    return render(shots, options, progress=progress)
