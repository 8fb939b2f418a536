"""Takes: several seeds of one shot, each scored (media/score.py), the best one used.

Every take is an ordinary cache entry (its key has its seed), so takes are generated once, kept, and
re-chosen for free; ``mvgen pick`` pins one by writing its seed into the shot list.
"""

from __future__ import annotations

from typing import Any

from mvgen.cache import ShotCache
from mvgen.media.score import best_take, score_take
from mvgen.timeline import PlannedShot, RenderPlan


class TakeBook:
    """The scores of the takes seen in one render, and which take each slot uses."""

    def __init__(self, cache: ShotCache, plan: RenderPlan) -> None:
        self.cache = cache
        self.plan = plan
        self.metrics: dict[str, dict[str, Any]] = {}  # clip key -> metrics and score
        self.chosen: dict[int, tuple[int, list[str]]] = {}  # slot index -> (take index, take keys)

    def metrics_of(self, key: str, prompt: str) -> dict[str, Any]:
        if key not in self.metrics:
            entry = self.cache.get(key)
            if entry is None:
                raise KeyError(key)
            try:
                stored = entry.meta().get("take_score")
            except (OSError, ValueError):
                stored = None
            if stored is None:  # generated as a single take before: score it now
                from mvgen.media.clips import read_clip

                stored = score_take(read_clip(entry.clip), prompt)
            self.metrics[key] = stored
        return self.metrics[key]

    def choose(self, shot: PlannedShot, keys: list[str]) -> str:
        """The key of the best of a slot's takes (all in the cache)."""
        scores = [self.metrics_of(k, shot.prompt)["score"] for k in keys]
        best = best_take(scores)
        self.chosen[shot.index] = (best, keys)
        return keys[best]

    def manifest_fields(self, shot: PlannedShot) -> dict[str, Any]:
        """``take`` (1-based) and, for a slot with several takes, every take's seed, key and scores."""
        if shot.index not in self.chosen:
            return {"take": 1, "takes": None}
        best, keys = self.chosen[shot.index]
        rows = [
            {"take": i + 1, "seed": seed, "cache_key": k, **self.metrics[k]}
            for i, (k, seed) in enumerate(zip(keys, shot.take_seeds(), strict=True))
        ]
        return {"take": best + 1, "takes": rows}
