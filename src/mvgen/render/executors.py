"""Executors: where a render's shots are generated. ``local`` runs them here, one at a time, on the
model loaded once; ``ray`` spreads them over a Ray cluster (distributed.py). Both produce slots with
``render.produce.produce_slot`` into the render's ``RenderState``; they are chosen by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mvgen.config.presets import ModelRef
from mvgen.errors import ConfigError
from mvgen.options import RenderOptions
from mvgen.progress import ProgressCallback, ProgressEvent
from mvgen.render.assembly import stop_check
from mvgen.render.produce import produce_slot, take_label
from mvgen.render.state import RenderState
from mvgen.timeline import PlannedShot

if TYPE_CHECKING:
    from mvgen.estimate import EtaClock
    from mvgen.prepare import Job


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

    @classmethod
    def for_options(cls, options: RenderOptions) -> BackendPool:
        return cls(options.device, offload=options.offload, dtype=options.dtype, ray_address=options.ray_address,
                   ray_workers=options.ray_workers)  # fmt: skip

    @staticmethod
    def key(model: ModelRef) -> tuple[str, str]:
        return (model.source, model.location)

    def get(self, model: ModelRef) -> Any:
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


@dataclass
class Generation:
    """What an executor is given: the job, its state and the slots to generate, and the driver's
    hooks (progress, stop, ETA; ``slot_finished(index, ok)`` once a slot is final or failed)."""

    job: Job
    state: RenderState
    todo: list[PlannedShot]
    pool: BackendPool
    gen: Any  # the driver's backend (loaded for the local executor)
    progress: ProgressCallback
    should_stop: Callable[[], bool]
    keep_going: bool
    eta: EtaClock
    slot_finished: Callable[[int, bool], None]


class Executor(Protocol):
    """Generates every slot of ``Generation.todo`` into its state."""

    loads_model: bool  # the driver's backend loads the model (else each worker loads its own)
    overlaps: bool  # the assembly can run beside it, fed slot by slot

    def generate(self, g: Generation) -> None: ...


EXECUTORS = {"local": "mvgen.render.executors:LocalExecutor", "ray": "mvgen.distributed:RayExecutor"}


def get_executor(name: str) -> Executor:
    if name not in EXECUTORS:
        raise ConfigError(f"unknown backend {name!r}", hint=f"available: {', '.join(EXECUTORS)}")
    module, _, cls = EXECUTORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


class _DriverReporter:
    """A producer's events as the driver shows them: numbered in the to-do list, with the ETA."""

    def __init__(self, g: Generation, n: int) -> None:
        self.g, self.n, self.total = g, n, len(g.todo)

    def _emit(self, event: str, s: PlannedShot, **kw: Any) -> None:
        self.g.progress(ProgressEvent(event, shot=s.id, index=self.n, total=self.total, **kw))

    def started(self, s: PlannedShot, take: int) -> None:
        self._emit("shot_start", s, steps=self.g.state.plan.steps_of(s), message=take_label(s, take) + s.prompt,
                   extra={"take": take + 1, "takes": s.takes})  # fmt: skip
        self.g.eta.start()

    def step(self, s: PlannedShot, step: int, steps: int) -> None:
        self._emit("step", s, step=step, steps=steps, extra=self.g.eta.at_step(s, step, steps))
        stop_check(self.g.should_stop)

    def warning(self, s: PlannedShot, message: str) -> None:
        self.g.progress(ProgressEvent("warning", shot=s.id, message=message))

    def cached(self, s: PlannedShot, *, found_late: bool) -> None:
        if found_late:  # another process made it while we waited for its lock
            self._emit("shot_cached", s)
        self.g.eta.skip(s)

    def done(self, s: PlannedShot, take: int, seconds: float) -> None:
        self.g.eta.done(s, seconds)
        self._emit("shot_done", s, seconds=seconds,
                   extra={"take": take + 1, "takes": s.takes, **self.g.eta.remaining()})  # fmt: skip

    def failed(self, s: PlannedShot, message: str) -> None:
        self._emit("shot_failed", s, message=message)


class LocalExecutor:
    """The shots one after another on this machine's model, in the video's order."""

    loads_model = True
    overlaps = True

    def generate(self, g: Generation) -> None:
        for n, s in enumerate(g.todo):
            stop_check(g.should_stop)
            made = produce_slot(g.gen, g.state, s, _DriverReporter(g, n), keep_going=g.keep_going,
                                should_stop=g.should_stop)  # fmt: skip
            g.slot_finished(s.index, made is not None)
