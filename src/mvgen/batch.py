"""Batches: several shot lists in one run, the way cron jobs use mvgen.

Every job is checked and planned before the first GPU second; jobs then run in order, with a model
kept loaded across consecutive jobs that use it. Each job ends with a status; the batch's exit code
follows DESIGN.md: 0 all done, 3 some failed (``--keep-going``), 75 busy, 130 interrupted.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mvgen import pipeline
from mvgen.errors import BusyError, ConfigError, ExitCode, Interrupted, MvgenError
from mvgen.pipeline import BackendPool, Job, PartialRender
from mvgen.progress import ProgressCallback, ProgressEvent, null_progress
from mvgen.timeline import RenderPlan


@dataclass
class JobResult:
    shotlist: str
    status: str  # ok | partial | failed | busy | invalid | interrupted | not-run
    out: str | None = None
    generated: int = 0
    cached: int = 0
    failed: int = 0
    seconds: float = 0.0
    error: str | None = None
    hint: str | None = None
    exit_code: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    def fail(self, status: str, exc: MvgenError) -> None:
        self.status, self.error, self.hint, self.exit_code = status, exc.message, exc.hint, int(exc.exit_code)


@dataclass
class BatchResult:
    jobs: list[JobResult]

    @property
    def exit_code(self) -> ExitCode:
        statuses = {j.status for j in self.jobs}
        if "interrupted" in statuses:
            return ExitCode.INTERRUPTED
        if statuses <= {"ok"}:
            return ExitCode.OK
        if statuses <= {"ok", "busy"}:
            return ExitCode.BUSY
        if len(self.jobs) == 1:
            return ExitCode(self.jobs[0].exit_code)
        return ExitCode.PARTIAL if "ok" in statuses or "partial" in statuses else ExitCode.FAILURE


class BatchInputError(ConfigError):
    """One or more jobs of a batch are invalid (exit 2); ``errors`` has one line per job."""

    def __init__(self, errors: list[MvgenError]) -> None:
        first = errors[0]
        super().__init__(first.message, hint=first.hint)
        self.errors = errors
        self.exit_code = max(e.exit_code for e in errors)


def expand_sources(sources: list[str]) -> list[Path]:
    """Folders (their *.yaml / *.yml, sorted), glob patterns (sorted matches) and files, in order,
    without duplicates. A source that matches nothing is an error."""
    out: list[Path] = []
    seen: set[Path] = set()
    for src in sources:
        p = Path(src).expanduser()
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise ConfigError(f"{src}: no shot lists (*.yaml, *.yml) in this folder")
        elif any(ch in src for ch in "*?["):
            found = sorted(Path(m) for m in glob.glob(str(p)) if Path(m).is_file())
            if not found:
                raise ConfigError(f"{src}: the pattern matches no file")
        else:
            found = [p]
        for f in found:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                out.append(f)
    return out


def prepare_all(
    paths: list[Path],
    *,
    audio: str | None,
    out: str | None,
    model: str | None,
    device: str,
    keep_going: bool,
    grid: pipeline.GridOptions | None = None,
    require_weights: bool = True,
    levers: dict[str, Any] | None = None,
) -> list[tuple[Path, Job | None, RenderPlan | None, MvgenError | None, float]]:
    """Check and plan every job before anything is generated. Each row: the shot list, its job and
    plan (or the error that stopped it), and the seconds its analysis and planning took."""
    if len(paths) > 1 and (out or audio):
        raise ConfigError(
            "--out and --audio apply to one shot list; set `output:` and `audio:` in each file instead"
        )
    if len(paths) > 1 and grid is not None:  # each job has its own track: one grid cannot fit them all
        raise ConfigError(
            "--bpm, --offset and --beats-file apply to one shot list",
            hint="set audio: {path: ..., bpm: 120} or audio: {path: ..., beats_file: ...} in each file instead",
        )
    prepared = []
    errors: list[MvgenError] = []
    outputs: dict[Path, Path] = {}
    for path in paths:
        try:
            job = pipeline.prepare(
                path,
                audio=audio,
                out=out,
                model=model,
                device=device,
                grid=grid,
                require_weights=require_weights,
                levers=levers,
            )
            target = job.out.expanduser().resolve()
            if target in outputs:
                raise ConfigError(
                    f"{path}: writes {job.out}, like {outputs[target]}; give each job its own output"
                )
            outputs[target] = path
            t0 = time.monotonic()
            plan = pipeline.plan(job, pipeline.analyze(job))
            prepared.append((path, job, plan, None, time.monotonic() - t0))
        except MvgenError as exc:
            errors.append(exc)
            prepared.append((path, None, None, exc, 0.0))
    if errors and not keep_going:
        raise BatchInputError(errors)
    return prepared


def run_batch(
    sources: list[str],
    *,
    audio: str | None = None,
    out: str | None = None,
    model: str | None = None,
    device: str = "auto",
    offload: str = "auto",
    dtype: str | None = None,
    backend: str | None = None,
    ray_address: str | None = None,
    ray_workers: int | None = None,
    force: bool = False,
    only: set[str] | None = None,
    keep_going: bool = False,
    wait: bool = False,
    progress: ProgressCallback = null_progress,
    should_stop: Callable[[], bool] = pipeline.never_stop,
    grid: pipeline.GridOptions | None = None,
    preview: bool = False,
    otio: str | None = None,
    levers: dict[str, Any] | None = None,
    overlap: bool = True,
) -> BatchResult:
    """``preview``: write each job's animatic (OUT.preview.mp4) instead of rendering it: no model,
    no weights needed. ``levers``: `generation:` values from the command line (quality, compile);
    ``overlap``: encode beside the generation (local backend)."""
    paths = expand_sources(sources)
    otio_path = None
    if otio is not None:
        from mvgen.otio_export import check_otio_path, require_otio

        if len(paths) > 1:
            raise ConfigError("--otio applies to one shot list")
        otio_path = check_otio_path(otio)
        require_otio()
    prepared = prepare_all(
        paths,
        audio=audio,
        out=out,
        model=model,
        device=device,
        keep_going=keep_going,
        grid=grid,
        require_weights=not preview,
        levers=levers,
    )
    results: list[JobResult] = []
    for path, _, _, err, _ in prepared:
        if err is not None:
            invalid = JobResult(str(path), "invalid")
            invalid.fail("invalid", err)
            results.append(invalid)
    runnable = [(p, j, pl, secs) for p, j, pl, e, secs in prepared if e is None]
    if backend == "ray" or any(
        j is not None and j.shotlist.shots.backend == "ray" for _, j, _, _ in runnable
    ):
        from mvgen.distributed import require_ray

        require_ray()  # before anything runs: exit 4 with the install hint
    pool = BackendPool(
        device,
        offload=offload,
        dtype=dtype,
        ray_address=ray_address,
        ray_workers=ray_workers,
    )
    stopped = False
    many = len(runnable) > 1  # job events only mean something in a batch
    try:
        for i, (path, job, plan, planned_s) in enumerate(runnable):
            assert job is not None
            if stopped:
                results.append(JobResult(str(path), "not-run", out=str(job.out)))
                continue
            # free models no later job needs before this one loads its own
            pool.release_unless({BackendPool.key(j.model) for _, j, _, _ in runnable[i:] if j is not None})
            if many:
                progress(ProgressEvent("job_start", shotlist=str(path), index=i, total=len(runnable)))
            t0 = time.monotonic()
            res = JobResult(str(path), "ok", out=str(job.out))
            try:
                if preview:
                    r = pipeline.render_preview(
                        job, plan_=plan, progress=progress, should_stop=should_stop, otio=otio_path
                    )
                    res.out = str(r.out)
                else:
                    r = pipeline.render(
                        job, force=force, only=only, backend=backend or job.shotlist.shots.backend,
                        device=device, progress=progress,
                        pool=pool, plan_=plan, wait=wait, keep_going=keep_going, should_stop=should_stop,
                        planned_s=planned_s, otio=otio_path, overlap=overlap,
                    )  # fmt: skip
                res.generated, res.cached = r.generated, r.cached
            except Interrupted as exc:
                res.fail("interrupted", exc)
                stopped = True
            except BusyError as exc:
                res.fail("busy", exc)
            except PartialRender as exc:
                res.fail("partial", exc)
                res.failed, res.generated, res.cached = len(exc.failed), exc.generated, exc.cached
            except MvgenError as exc:
                res.fail("failed", exc)
                stopped = not keep_going
            res.seconds = round(time.monotonic() - t0, 3)
            results.append(res)
            if many:
                progress(
                    ProgressEvent(
                        "job_end", shotlist=str(path), index=i, total=len(runnable), seconds=res.seconds,
                        message=res.status, extra={"error": res.error} if res.error else {},
                    )
                )  # fmt: skip
    finally:
        pool.close()
    order = {str(p): n for n, p in enumerate(paths)}
    results.sort(key=lambda r: order.get(r.shotlist, 0))
    return BatchResult(results)
