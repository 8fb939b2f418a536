"""Producing one slot: its conditioning frame when chained, each take generated into the cache under
its key's lock (or found there), chain anchoring, take scoring, and the best take chosen. Every
executor (the local loop, each Ray worker) produces slots with ``produce_slot``; what differs between
them is only where the events go (a ``Reporter``) and what happens on a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mvgen.cache import CLIP_NAME
from mvgen.errors import EncodeError, GenerationError, Interrupted, MvgenError
from mvgen.files import is_disk_full
from mvgen.keys import step_cache_label
from mvgen.render.state import RenderState
from mvgen.timeline import PlannedShot, RenderPlan, anchor_root, neighbours_needed


class Reporter(Protocol):
    """Where a producer's events go (the driver's progress and ETA, or a Ray worker's queue)."""

    def started(self, s: PlannedShot, take: int) -> None: ...
    def step(self, s: PlannedShot, step: int, steps: int) -> None: ...
    def warning(self, s: PlannedShot, message: str) -> None: ...
    def cached(self, s: PlannedShot, *, found_late: bool) -> None: ...
    def done(self, s: PlannedShot, take: int, seconds: float) -> None: ...
    def failed(self, s: PlannedShot, message: str) -> None: ...


def take_label(s: PlannedShot, take: int) -> str:
    """``take 2/3: `` before a shot's prompt in its start event (nothing for a shot with one take)."""
    return f"take {take + 1}/{s.takes}: " if s.takes > 1 else ""


@dataclass(frozen=True)
class TakeResult:
    cached: bool  # another process had made it by the time its lock was ours
    seconds: float = 0.0
    score: dict[str, Any] | None = None  # take metrics and score (shots with several takes)
    colour_drift: dict[str, float] | None = None


def request_for(plan: RenderPlan, shot: PlannedShot, image: Any = None, seed: int | None = None,
                references: tuple = (), last_image: Any = None):  # fmt: skip
    from mvgen.generate.base import ShotRequest

    return ShotRequest(
        shot_id=shot.id, prompt=shot.prompt, negative=shot.negative,
        seed=shot.seed if seed is None else seed, width=plan.gen_width, height=plan.gen_height,
        num_frames=shot.num_frames, steps=plan.steps_of(shot), guidance=plan.guidance_of(shot),
        max_sequence_length=plan.max_sequence_length, fps=plan.native_fps, image=image,
        window_frames=plan.window_frames,
        step_cache=plan.step_cache, step_cache_threshold=plan.step_cache_threshold,
        compile=plan.compile, attention=plan.attention, loras=shot.loras,
        fuse_loras=bool(shot.loras) and plan.shares_loras(shot), references=references, last_image=last_image,
    )  # fmt: skip


def generate_take(gen: Any, state: RenderState, s: PlannedShot, k: str, seed: int, frames_in: tuple[Any, Any],
                  report: Reporter, take: int) -> TakeResult:  # fmt: skip
    """Generate one take of a slot into the cache under its key's lock (or find that another
    process did). ``frames_in``: its start and end frames (or None). A chained shot's frames are
    colour-anchored; exceptions propagate."""
    from mvgen.locks import shot_lock

    cache, plan = state.cache, state.plan
    with shot_lock(k):
        cache.sweep(k)  # a killed writer's half-written folder for this key, if any
        # Another process may have generated it while we waited for its lock.
        if k not in state.regenerate and cache.get(k) is not None:
            return TakeResult(True)
        report.started(s, take)
        ts = time.monotonic()
        latents = cache.latents_path(k)
        if k in state.regenerate:
            latents.unlink(missing_ok=True)
        frames = gen.generate(
            request_for(plan, s, frames_in[0], seed, state.model_references(s), frames_in[1]),
            lambda step, steps: report.step(s, step, steps),
            latents_path=latents,
            notify=lambda message: report.warning(s, message),
        )
        drift = None
        if anchor_root(plan, s.index) is not None:
            frames, before, after = state.anchor(s.index, frames)
            drift = {"before": round(before, 3), "after": round(after, 3)}
        score = None
        if s.takes > 1 or s.references:  # a shot with cast pictures: its likeness to them, reported
            from mvgen.media.score import score_take

            score = score_take(frames, s.prompt, state.references(s))
        meta = {
            "shot": s.id, "prompt": s.prompt, "negative": s.negative, "seed": seed,
            "num_frames": int(frames.shape[0]), "width": int(frames.shape[2]), "height": int(frames.shape[1]),
            "fps": plan.native_fps, "model": state.ident.to_json(), "steps": plan.steps_of(s),
            "guidance": plan.guidance_of(s), "image_sha256": state.slots[s.index].image_sha256,
            "end_sha256": state.slots[s.index].end_sha256,
            "colour_drift": drift, "take_score": score, "step_cache": step_cache_label(plan),
        }  # fmt: skip
        seconds = time.monotonic() - ts
        meta["seconds"] = round(seconds, 3)
        _store(cache, k, meta, frames, plan.native_fps, s)
        latents.unlink(missing_ok=True)
        return TakeResult(False, seconds, score, drift)


def _store(cache: Any, k: str, meta: dict[str, Any], frames: Any, fps: float, s: PlannedShot) -> None:
    from mvgen.media.clips import write_clip

    try:
        with cache.writer(k, meta) as folder:
            write_clip(folder / CLIP_NAME, frames, fps)
    except (OSError, MvgenError) as exc:
        if is_disk_full(exc):
            raise EncodeError(
                f"disk full while storing shot {s.id!r} in the cache ({cache.root})",
                hint="free space there (or set MVGEN_CACHE_DIR) and re-run: finished shots are kept",
            ) from None
        raise


def produce_slot(gen: Any, state: RenderState, s: PlannedShot, report: Reporter, *, keep_going: bool,
                 should_stop: Callable[[], bool]) -> list[str] | None:  # fmt: skip
    """Produce slot ``s`` into ``state``: its takes generated (or found), its clip chosen. The keys
    this call generated; None when it failed and ``keep_going`` carries on (else the error raises)."""
    image = end = None
    slot = state.slots[s.index]
    for j in neighbours_needed(s):
        if not state.has_clip(state.slots[j].key):  # it failed (--keep-going)
            why = "the shot it chains from" if j < s.index else "the shot it ends on"
            return _failed(state, s, report, f"shot {s.id!r}: not generated: {why} failed", keep_going)
    if s.chain:
        image, slot.image_sha256 = state.last_frame(s.index)
    elif s.image is not None:
        image, slot.image_sha256 = state.still(s)
    if s.end_next:
        end, slot.end_sha256 = state.next_frame(s.index)
    elif s.end is not None:
        end, slot.end_sha256 = state.still(s, s.end)
    candidates = state.slot_candidates(s)
    if state.regenerates(s):
        state.regenerate.update(candidates)
    ok, generated = True, []
    for take, (k, seed) in enumerate(zip(candidates, s.take_seeds(), strict=True)):
        if k in state.outcomes:  # the same picture as an earlier slot's (a chain repeated by a loop)
            continue
        if k not in state.regenerate and state.cache.get(k) is not None:
            state.outcomes[k] = True
            report.cached(s, found_late=False)
            continue
        if should_stop():
            raise Interrupted("interrupted; finished shots are cached, re-run to resume")
        try:
            r = generate_take(gen, state, s, k, seed, (image, end), report, take)
        except Interrupted:
            raise
        except Exception as exc:
            err = exc if isinstance(exc, MvgenError) else GenerationError(
                f"shot {s.id!r}: generation failed: {type(exc).__name__}: {exc}")  # fmt: skip
            if not keep_going:
                raise err from exc
            _failed(state, s, report, err.message, keep_going)
            ok = False
            continue
        if r.cached:
            state.outcomes[k] = True
            report.cached(s, found_late=True)
            continue
        state.mark_generated(s, k, r.seconds, r.score)
        generated.append(k)
        report.done(s, take, r.seconds)
    if not ok:
        return None
    state.choose(s, candidates)
    return generated


def _failed(state: RenderState, s: PlannedShot, report: Reporter, message: str, keep_going: bool) -> None:
    if not keep_going:
        raise GenerationError(message)
    state.mark_failed(s, message)
    report.failed(s, message)
