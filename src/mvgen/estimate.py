"""How long generation will take: before a render (the cut sheet's estimates) and during it (ETA).

The unit of work is one denoising step over one megapixel-frame (steps x frames x width x height):
a model's cost per unit is measured, never guessed — from the shots this machine already rendered
with the same model (their cache entries record the seconds each took), else from the preset's
``step_cost_s`` where one was measured, else unknown. During a render the clock switches to the
seconds measured so far in this run.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass

from mvgen.cache import META_NAME, ShotCache
from mvgen.timeline import PlannedShot, RenderPlan

RECENT = 50  # the newest cache entries of a model that the measured rate is the median of


def work_units(plan: RenderPlan, shot: PlannedShot) -> float:
    """One take's work: denoising steps x frames x megapixels."""
    return plan.steps_of(shot) * shot.num_frames * plan.gen_width * plan.gen_height / 1e6


@dataclass(frozen=True)
class Rate:
    seconds_per_unit: float
    source: str  # "measured here (N shots)" | "preset"


def measured_rate(cache: ShotCache, model_id: str, step_cache: str | None = None) -> Rate | None:
    """Median seconds per unit over this machine's newest cached shots of the model, or None.

    A step cache (``step_cache``: its cache-key label, e.g. ``"magcache:0.06"``) makes a shot
    faster: shots rendered with the same setting are used; when there are none, the others are (the
    source says so)."""
    samples: dict[bool, list[tuple[float, float]]] = {True: [], False: []}  # same setting? -> (mtime, rate)
    for meta_path in cache.root.glob(f"*/*/{META_NAME}"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("model", {}).get("id") != model_id:
                continue
            units = meta["steps"] * meta["num_frames"] * meta["width"] * meta["height"] / 1e6
            seconds = float(meta["seconds"])
            if units > 0 and seconds > 0:
                same = meta.get("step_cache") == step_cache
                samples[same].append((meta_path.stat().st_mtime, seconds / units))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    same = bool(samples[True])
    chosen = samples[same]
    if not chosen:
        return None
    recent = [rate for _, rate in sorted(chosen)[-RECENT:]]
    what = "" if same else (" without the step cache" if step_cache else " with a step cache")
    return Rate(statistics.median(recent), f"measured here{what} ({len(recent)} shots)")


def prior_rate(
    cache: ShotCache, model_id: str, step_cost_s: float | None, step_cache: str | None = None
) -> Rate | None:
    return measured_rate(cache, model_id, step_cache) or (
        Rate(step_cost_s, "preset") if step_cost_s else None
    )


class EtaClock:
    """Remaining generation time during a render, from the seconds measured so far."""

    def __init__(self, plan: RenderPlan, todo: list[PlannedShot], prior: Rate | None) -> None:
        self.plan = plan
        self.prior = prior
        self.left = sum(work_units(plan, s) * s.takes for s in todo)
        self.done_units = 0.0
        self.done_seconds = 0.0
        self.started = time.monotonic()

    def start(self) -> None:
        self.started = time.monotonic()

    def _rate(self, partial_units: float = 0.0) -> float | None:
        if self.done_units > 0:
            return self.done_seconds / self.done_units
        if partial_units > 0:  # the first take, part way: its own pace so far
            return (time.monotonic() - self.started) / partial_units
        return self.prior.seconds_per_unit if self.prior else None

    def skip(self, shot: PlannedShot) -> None:
        """A take found in the cache after all."""
        self.left = max(0.0, self.left - work_units(self.plan, shot))

    def done(self, shot: PlannedShot, seconds: float) -> None:
        units = work_units(self.plan, shot)
        self.left = max(0.0, self.left - units)
        self.done_units += units
        self.done_seconds += seconds

    def at_step(self, shot: PlannedShot, step: int, steps: int) -> dict[str, float]:
        partial = work_units(self.plan, shot) * step / max(1, steps)
        rate = self._rate(partial)
        if rate is None:
            return {}
        return {"eta_s": round(rate * max(0.0, self.left - partial), 1)}

    def remaining(self) -> dict[str, float]:
        rate = self._rate()
        return {} if rate is None else {"eta_s": round(rate * self.left, 1)}
