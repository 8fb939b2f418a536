"""The render's side of the assembly: slots handed to the encoder as their clips become final."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mvgen.errors import Interrupted
from mvgen.progress import ProgressCallback, ProgressEvent
from mvgen.render.state import RenderState, slot_clip


def stop_check(should_stop: Callable[[], bool]) -> None:
    if should_stop():
        raise Interrupted("interrupted; finished shots are cached, re-run to resume")


class Assembly:
    """The assembly in a process of its own (:class:`mvgen.media.assembler.AssemblyProcess`).
    Slots are handed over as their clips become final (their takes chosen), so with ``overlap`` it
    starts before the generation and encodes the song's first minutes while the model makes the
    last ones, at a lower CPU priority and without sharing the model's interpreter; otherwise it
    starts once every clip is ready. Its progress is reported only once the generation is over
    (``finish``, on the calling thread), so the two never write to the display at once."""

    def __init__(self, state: RenderState, audio: Any, out: Path, pending: set[int], progress: ProgressCallback,
                 should_stop: Callable[[], bool], *, overlap: bool) -> None:  # fmt: skip
        from mvgen.media.assembler import AssemblyProcess

        self.state = state
        self.pending = set(pending)  # slots still to be generated in this run
        self.waiting = set(range(len(state.slots)))  # slots not handed over yet
        self._progress, self._should_stop = progress, should_stop
        self.proc = AssemblyProcess(state.plan, audio, out, background=overlap)
        self.publish()

    @property
    def stills(self) -> dict[int, Any]:
        """Each slot's middle frame as composed, small (once ``finish`` has returned)."""
        return self.proc.stills

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
            k = self.state.slots[i].key
            if not all_final and (i in self.pending or k is None or k not in self.state.outcomes):
                continue
            assert k is not None
            self.waiting.discard(i)
            self.proc.publish(i, *slot_clip(self.state.cache, k))

    def finish(self) -> dict[str, object]:
        """Wait for the encode, reporting its progress; its result, or its error raised here."""
        self.publish(all_final=True)
        total = self.state.plan.total_frames
        shown, shown_at = -1, 0.0
        for done in self.proc.frames():  # every 0.25 s, and once at the end
            stop_check(self._should_stop)
            now = time.monotonic()
            if done != shown and (now - shown_at >= 1.0 or done == total):
                self._progress(ProgressEvent("encode", step=done, steps=total))
                shown, shown_at = done, now
        return self.proc.result()

    def cancel(self) -> None:
        """Stop the encode and wait until its temp file is gone (the old output stays untouched)."""
        self.proc.cancel()
