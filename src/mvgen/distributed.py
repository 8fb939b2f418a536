"""Shots across a Ray cluster: one actor per GPU (or per CPU in CPU mode) holds the model loaded once
and renders the groups of shots sent to it; the driver plans, collects and assembles.

A *group* is what must run in order on one worker: a shot and the chained shots that continue it
(with takes, the chain continues the chosen take). Groups are independent, so they run in parallel,
the largest first. Workers write finished shots into the cache when the driver's cache directory is
theirs too (a shared file system: atomic, locked, as in a local render); otherwise the clip comes
back through Ray's object store and the driver stores it. Either way the cache ends up exactly as a
local render leaves it. A group whose worker dies is sent again (once) to a live worker; the shots
it had finished are already cached and are not generated again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvgen.errors import GenerationError, Interrupted, MvgenError, SetupError
from mvgen.keys import ModelIdentity
from mvgen.progress import ProgressCallback, ProgressEvent
from mvgen.render.executors import Generation
from mvgen.render.produce import produce_slot, take_label
from mvgen.render.state import RenderState, SlotResult
from mvgen.timeline import dependency_order, neighbours_needed

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # a group is sent at most twice: a dead worker's group is re-rendered once
POLL_S = 0.25  # how often the driver forwards workers' events while it waits
STEP_EVENTS_S = 0.5  # a worker reports denoising steps at most this often


def require_ray():
    try:
        import ray
    except ImportError:
        raise SetupError(
            "--backend ray needs Ray", hint='pip install "mvgen[ray]" (or: pip install "ray>=2.40")'
        ) from None
    return ray


def connect(address: str | None, workers: int | None) -> bool:
    """Join the cluster at ``address`` ("auto": the running one) or start a local one; True when
    this call started Ray (the caller shuts it down)."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=max(workers or os.cpu_count() or 1, 1), **kwargs)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ...: all say "no cluster"
        raise SetupError(
            f"--ray-address {address or '(local)'}: cannot start or join Ray: {exc}",
            hint="`ray start --head` on the head node, then --ray-address auto (or the head's address)",
        ) from None
    return True


@dataclass
class Group:
    slots: list[int]  # plan indices, in order
    work: float  # for scheduling: the largest first
    attempts: int = 0


def make_groups(plan, todo, keys, work_of) -> list[Group]:
    """Group the slots to generate: a chained slot joins the group that produces the clip it
    continues (its own slot's group, or the group of the slot that generates the same clip)."""
    group_of: dict[int, int] = {}
    producer: dict[str, int] = {}
    groups: list[Group] = []
    for i in dependency_order(plan, [s.index for s in todo]):
        s = plan.shots[i]
        g = None
        for p in neighbours_needed(s):  # the group making a clip it is made from (a later one: merged in)
            q = group_of.get(p)
            if q is None and keys[p] is not None and keys[p] in producer:
                q = group_of[producer[keys[p]]]
            if q is not None and g is not None and q != g:
                q = _merge(groups, group_of, q, g)
            g = q if q is not None else g
        if g is None:
            groups.append(Group([], 0.0))
            g = len(groups) - 1
        groups[g].slots.append(s.index)
        groups[g].work += work_of(s)
        group_of[s.index] = g
        if keys[s.index] is not None:
            producer.setdefault(keys[s.index], s.index)
    for grp in groups:
        grp.slots = dependency_order(plan, grp.slots)
    return sorted((grp for grp in groups if grp.slots), key=lambda grp: -grp.work)


def _merge(groups: list[Group], group_of: dict[int, int], src: int, dest: int) -> int:
    """Group ``src`` moved into group ``dest`` (a slot needs clips both make); ``dest``."""
    for i in groups[src].slots:
        group_of[i] = dest
    groups[dest].slots += groups[src].slots
    groups[dest].work += groups[src].work
    groups[src] = Group([], 0.0)
    return dest


@functools.cache
def _worker_class():
    """The worker's Ray class, defined (and registered with Ray) once per process."""
    ray = require_ray()

    @ray.remote(max_restarts=MAX_ATTEMPTS, max_task_retries=0)
    class ShotWorker:
        """One model, loaded once, rendering the groups it is sent."""

        def __init__(self, model: dict, device: str, offload: str, dtype: str | None, threads: int,
                     cache_dir: str | None, index: int) -> None:  # fmt: skip
            if cache_dir:
                os.environ["MVGEN_CACHE_DIR"] = cache_dir
            import torch

            from mvgen.config.presets import resolve_model
            from mvgen.generate.local import LocalBackend

            if threads > 0:
                torch.set_num_threads(threads)
            ref = resolve_model(model["spec"], base_dir=Path(model["base_dir"]), require_weights=True)
            self.gen = LocalBackend(ref, device=device, offload=offload, dtype=dtype)
            self.index = index

        def pid(self) -> int:
            return os.getpid()

        def cache_dir(self) -> str:
            from mvgen.files import cache_root

            return str(cache_root())

        def sees(self, path: str) -> bool:
            return Path(path).exists()

        def run_group(self, plan_json: dict, slots: list[int], keys: list[str | None], ident: ModelIdentity,
                      force: bool, regenerate_ids: list[str], anchors: dict, frames: dict, shared: bool,
                      queue) -> list[SlotResult]:  # fmt: skip
            return run_group(self.gen, self.index, plan_json, slots, keys, ident, force, regenerate_ids, anchors,
                             frames, shared, queue)  # fmt: skip

    return ShotWorker


class _WorkerReporter:
    """A producer's events sent to the driver's queue without waiting (calls from one worker keep
    their order); denoising steps at most every STEP_EVENTS_S, the last one always."""

    def __init__(self, queue, plan, pid: int, worker: int) -> None:
        self.queue, self.plan, self.where = queue, plan, {"pid": pid, "worker": worker}
        self.last_step = 0.0

    def _emit(self, event: str, **kw: Any) -> None:
        if self.queue is None:
            return
        kw["extra"] = {**kw.get("extra", {}), **self.where}
        self.queue.actor.put_nowait.remote(ProgressEvent(event, total=len(self.plan.shots), **kw))

    def started(self, s, take: int) -> None:
        self._emit("shot_start", shot=s.id, index=s.index, steps=self.plan.steps_of(s),
                   message=take_label(s, take) + s.prompt,
                   extra={"take": take + 1, "takes": s.takes})  # fmt: skip

    def step(self, s, step: int, steps: int) -> None:
        if step < steps:
            now = time.monotonic()
            if now - self.last_step < STEP_EVENTS_S:
                return
            self.last_step = now
        self._emit("step", shot=s.id, index=s.index, step=step, steps=steps)

    def warning(self, s, message: str) -> None:
        self._emit("warning", shot=s.id, message=message)

    def cached(self, s, *, found_late: bool) -> None:
        pass

    def done(self, s, take: int, seconds: float) -> None:
        self._emit(
            "shot_done", shot=s.id, index=s.index, seconds=seconds, extra={"take": take + 1, "takes": s.takes}
        )

    def failed(self, s, message: str) -> None:
        pass


def run_group(gen, worker: int, plan_json: dict, slots: list[int], keys: list[str | None], ident: ModelIdentity,
              force: bool, regenerate_ids: list[str], anchors: dict, frames: dict, shared: bool,
              queue) -> list[SlotResult]:  # fmt: skip
    """Render one group on this worker (see the module's docstring); events go to ``queue``."""
    from mvgen.cache import ShotCache
    from mvgen.timeline import RenderPlan

    plan = RenderPlan.from_json(plan_json)
    state = RenderState(plan, ident, ShotCache(), force=force, regenerate_ids=regenerate_ids)
    for slot, key in zip(state.slots, keys, strict=True):
        slot.key = key
    state.last_frames.update(frames)  # the driver's, for the clips made elsewhere that this group continues
    state.anchors.update(anchors)
    pid = os.getpid()
    if not gen.loaded:
        gen.load()
    report = _WorkerReporter(queue, plan, pid, worker)
    results = []
    for idx in slots:
        s = plan.shots[idx]
        started = time.time()
        generated = produce_slot(gen, state, s, report, keep_going=False, should_stop=lambda: False)
        assert generated is not None  # without keep_going a failure raises
        candidates = state.slot_candidates(s)
        clips = {}
        if not shared:  # the driver stores what it lacks (made here now, or cached here before)
            for k in candidates:
                entry = state.cache.get(k)
                clips[k] = (entry.clip.name, entry.clip.read_bytes(), entry.meta())
        results.append(state.result(s, candidates, generated, pid=pid, worker=worker, started=started,
                                    finished=time.time(), clips=clips))  # fmt: skip
    return results


class RayPool:
    """The driver's side: workers, the events queue, and the loop that hands out groups."""

    def __init__(self, job, *, device: str, offload: str, dtype: str | None, address: str | None,
                 workers: int | None, threads: int = 1, worker_cache_dir: str | None = None) -> None:  # fmt: skip
        ray = require_ray()
        self.ray = ray
        self.started = connect(address, workers)
        from ray.util.queue import Queue

        resources = ray.cluster_resources()
        gpus = 1 if device in ("cuda", "auto") and resources.get("GPU", 0) >= 1 else 0
        # one worker per GPU, or per CPU without GPUs
        n = workers or (int(resources["GPU"]) if gpus else max(1, int(resources.get("CPU", 1))))
        worker_cls = _worker_class().options(num_gpus=gpus, num_cpus=0 if gpus else 1)
        model = {"spec": job.model.spec, "base_dir": str(job.shotlist.base_dir)}
        if worker_cache_dir is None:  # the driver's path: the same cache where a shared file system has it
            from mvgen.files import cache_root

            worker_cache_dir = str(cache_root())
        actor_device = "cuda" if gpus else ("cpu" if device == "auto" else device)
        self.workers = [
            worker_cls.remote(model, actor_device, offload, dtype, threads, worker_cache_dir, i)
            for i in range(n)
        ]
        self.queue = Queue(actor_options={"num_cpus": 0})

    def shared_cache(self, root: Path) -> bool:
        """Whether the workers see the driver's cache directory (a token file written here is there)."""
        probe = root / f".ray-probe-{uuid.uuid4().hex}"
        root.mkdir(parents=True, exist_ok=True)
        probe.write_text("mvgen")
        try:
            dirs = self.ray.get([w.cache_dir.remote() for w in self.workers])
            seen = self.ray.get([w.sees.remote(str(probe)) for w in self.workers])
            return all(Path(d) == root for d in dirs) and all(seen)
        finally:
            probe.unlink(missing_ok=True)

    def drain(self, progress: ProgressCallback) -> None:
        from ray.util.queue import Empty

        while True:
            try:
                events = self.queue.get_nowait_batch(max(1, self.queue.qsize()))
            except Empty:
                return
            if not events:
                return
            for e in events:
                progress(e)

    def run(self, groups: list[Group], submit_args, ids: list[str], progress: ProgressCallback, should_stop,
            keep_going: bool) -> tuple[list[SlotResult], dict[str, str], dict[int, int]]:  # fmt: skip
        """Run every group; return the slot results, the failures (shot id -> message) and how many
        times each slot was sent (slot index -> attempts). ``ids``: the plan's shot ids, for messages."""
        ray = self.ray
        pending = list(groups)
        running: dict[Any, tuple[Group | None, int]] = {}  # a None group: a probe of a restarting worker
        idle = list(range(len(self.workers)))
        results: list[SlotResult] = []
        failed: dict[str, str] = {}
        attempts: dict[int, int] = {}
        while pending or running:
            while pending and idle:
                grp, w = pending.pop(0), idle.pop(0)
                grp.attempts += 1
                for i in grp.slots:
                    attempts[i] = grp.attempts
                ref = self.workers[w].run_group.remote(*submit_args(grp), self.queue)
                running[ref] = (grp, w)
            if pending and not running:  # every worker is gone for good
                for grp in pending:
                    self._fail(grp, ids, failed, "no Ray worker left", keep_going)
                break
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            self.drain(progress)
            if should_stop():
                for ref in running:
                    ray.cancel(ref, force=True)
                raise Interrupted("interrupted; finished shots are cached, re-run to resume")
            for ref in done:
                grp, w = running.pop(ref)
                try:
                    got = ray.get(ref)
                except ray.exceptions.RayActorError as exc:  # the worker died (killed, out of memory)
                    unavailable = isinstance(exc, ray.exceptions.ActorUnavailableError)
                    if grp is None:  # a probe: still restarting (ask again), or gone for good (drop it)
                        if unavailable:
                            time.sleep(POLL_S)
                            running[self.workers[w].pid.remote()] = (None, w)
                        continue
                    # Ray restarts the worker (max_restarts; the model loads again): it gets work again
                    # once it answers, so no group is sent to a worker that is still restarting.
                    running[self.workers[w].pid.remote()] = (None, w)
                    if grp.attempts < MAX_ATTEMPTS:
                        progress(ProgressEvent("warning", message=f"a worker died ({type(exc).__name__}); "
                                               f"sending its {len(grp.slots)} shot(s) again"))  # fmt: skip
                        pending.insert(0, grp)
                    else:
                        self._fail(grp, ids, failed, f"worker died {grp.attempts} times", keep_going)
                    continue
                except ray.exceptions.RayTaskError as exc:
                    idle.append(w)
                    cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
                    message = (
                        cause.message if isinstance(cause, MvgenError) else f"{type(cause).__name__}: {cause}"
                    )
                    self._fail(grp, ids, failed, message, keep_going)
                    continue
                idle.append(w)
                if grp is not None:
                    results += got
        self.drain(progress)
        return results, failed, attempts

    @staticmethod
    def _fail(grp: Group, all_ids: list[str], failed: dict[str, str], message: str, keep_going: bool) -> None:
        ids = [all_ids[i] for i in grp.slots]
        if not keep_going:
            raise GenerationError(f"shot {ids[0]!r}: generation failed on a Ray worker: {message}")
        for sid in ids:
            failed.setdefault(sid, f"shot {sid!r}: generation failed on a Ray worker: {message}")

    def close(self) -> None:
        for w in self.workers:
            with contextlib.suppress(Exception):  # already gone
                self.ray.kill(w)
        self.workers = []
        if self.started:
            self.ray.shutdown()


class RayExecutor:
    """``--backend ray``: the render's groups of shots on Ray workers (see the module's docstring)."""

    loads_model = False  # each worker loads its own
    overlaps = False

    def generate(self, g: Generation) -> None:
        from mvgen.estimate import work_units

        state, plan, pool = g.state, g.state.plan, g.pool
        # Workers use the driver's cache path (shared where a shared file system mounts it there);
        # MVGEN_RAY_WORKER_CACHE_DIR names another (a node-local disk).
        rp = RayPool(g.job, device=pool.device, offload=pool.offload, dtype=pool.dtype, address=pool.ray_address,
                     workers=pool.ray_workers, worker_cache_dir=os.environ.get("MVGEN_RAY_WORKER_CACHE_DIR"))  # fmt: skip
        try:
            shared = rp.shared_cache(state.cache.root.parent)
            groups = make_groups(plan, g.todo, state.keys, lambda s: work_units(plan, s) * s.takes)
            g.progress(ProgressEvent("info", message=f"Ray: {len(groups)} group(s) of shots on {len(rp.workers)} "
                                     f"worker(s); {'shared cache' if shared else 'clips come back through the object store'}"))  # fmt: skip
            plan_json = plan.to_json()

            def submit_args(grp: Group) -> tuple:
                frames, anchors = _handed_over(state, grp)
                return (plan_json, grp.slots, state.keys, state.ident, state.force, sorted(state.regenerate_ids),
                        anchors, frames, shared)  # fmt: skip

            ids = [s.id for s in plan.shots]
            results, failures, attempts = rp.run(
                groups, submit_args, ids, g.progress, g.should_stop, g.keep_going
            )
        finally:
            rp.close()
        state.failed.update(failures)
        state.merge(results, attempts)
        for first in state.repeats:
            if state.slots[first].key is not None:
                state.settle_repeats(first)


def _handed_over(state: RenderState, grp: Group) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a worker may not find in its own cache (or on its disk): the frame a group's first
    chained shot continues, its stills and cast pictures, and the colour statistics of chain roots
    outside the group."""
    from mvgen.timeline import anchor_root

    frames: dict[str, Any] = {}
    anchors: dict[str, Any] = {}
    for i in grp.slots:
        s = state.plan.shots[i]
        if s.end_next and i + 1 not in grp.slots and state.slots[i + 1].key is not None:
            frames[state.next_frame_ref(i)] = state.next_frame(i)  # the frame it ends on, made elsewhere
        if s.end is not None:
            frames[f"still:{state.still_digest(s, s.end)}"] = state.still(s, s.end)
        if s.chain and i - 1 not in grp.slots and state.slots[i - 1].key is not None:
            frames[state.frame_ref(i)] = state.last_frame(i)
        elif s.image is not None and not s.chain:  # the still's pixels travel, not its path
            frames[f"still:{state.still_digest(s)}"] = state.still(s)
        state.references(s)  # the cast's pictures too (scoring)
        frames.update({f"ref:{u.sha256}": state.last_frames[f"ref:{u.sha256}"] for u in s.references})
        state.model_references(s)  # and the reference images the model is given (VACE)
        vrefs = [state.model_reference_ref(u) for u in s.model_references]
        frames.update({ref: state.last_frames[ref] for ref in vrefs})
        root = anchor_root(state.plan, i)
        root_key = state.slots[root].key if root is not None else None
        if root is not None and root not in grp.slots and root_key is not None:
            anchors[root_key] = state.anchor_stats(root)
    return frames, anchors
