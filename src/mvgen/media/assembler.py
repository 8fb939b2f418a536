"""The assembly in a Python process of its own, fed slot by slot while the model works.

A render's assembly (:func:`mvgen.media.assemble.assemble`: decode, retime, compose, encode) runs
beside the generation. In a thread of the model's process it would share the interpreter lock with
the sampling loop, and its first import (moviepy) and every frame it composes would stall the
model's Python; so it runs in a child process instead, at a lower CPU priority when it runs beside
the generation (its decoders and encoder inherit it). The two talk over the child's stdin and
stdout, one pickled message at a time:

* parent -> child: ``("start", plan, audio, out, background)`` once, then ``("publish", i, path,
  frames)`` as each slot's clip becomes final, and ``("cancel",)`` (or end of file: the parent is
  gone) to stop;
* child -> parent: ``("frames", n)`` (n output frames composed and handed to the encoder) every
  :data:`REPORT_S` seconds and at each slot's first frame, then ``("done", info, stills)`` (what
  the written video was verified to hold; each slot's middle frame, small, for the contact sheet) or
  ``("error", exception, traceback_text)``.

The child writes the output itself, atomically (a temp file renamed at the end): stopped at any
point - a cancel, its parent gone (end of file), a SIGTERM of its own - it removes its temp file
and the previous output stays untouched. It runs in a session of its own, so a terminal's Ctrl-C
or a ``kill`` of the render's process group reaches only the parent, which stops it at a frame.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mvgen.errors import EncodeError

log = logging.getLogger(__name__)

# The child's command: the parent's own mvgen (its folder first on sys.path), installed or not: a
# checkout its caller put first on sys.path wins over an installed mvgen in the child too.
_CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); from mvgen.media.assembler import main; sys.exit(main())"
)

REPORT_S = 0.1  # seconds between two ("frames", n) messages
_HEADER = struct.Struct("<I")


def _send(stream: IO[bytes], message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _recv(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """The next message, or None at end of file."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    data = stream.read(_HEADER.unpack(head)[0])
    return pickle.loads(data)


class AssemblyProcess:
    """The parent's handle on one assembly child: ``publish`` slots as they become final, then
    iterate ``frames()`` (the encoded-frame counts as they come) and take ``result()``; ``cancel``
    stops the child and waits until its temp file is gone."""

    def __init__(self, plan: Any, audio: Any, out: Path, *, background: bool) -> None:
        self.done = 0  # output frames handed to the encoder so far
        self.total_frames = plan.total_frames
        self.stills: dict[int, Any] = {}  # each slot's middle frame, small (assemble's ``stills``)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(Path(__file__).resolve().parents[2])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.pid = self._proc.pid
        self._said: collections.deque[str] = collections.deque(maxlen=20)  # its last stderr lines
        self._stderr = threading.Thread(target=self._drain, name="mvgen-assembly-stderr", daemon=True)
        self._stderr.start()
        self._lock = threading.Lock()  # publish (generation thread) and cancel (main) both write
        self._finished = threading.Event()
        self._outcome: tuple[Any, ...] = ()
        self._write(("start", plan, audio, out, background))
        self._reader = threading.Thread(target=self._read, name="mvgen-assembly", daemon=True)
        self._reader.start()

    def _write(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            if self._proc.stdin is None or self._proc.stdin.closed:
                return
            with contextlib.suppress(OSError):  # the child is gone: _read reports how it ended
                _send(self._proc.stdin, message)

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it has ended (None while it runs)."""
        return self._proc.poll()

    def _drain(self) -> None:
        """The child's stderr (Python warnings, a crash's traceback) goes to the debug log, never
        to the user's terminal or a JSON log stream; the last lines explain an unexpected end."""
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                log.debug("assembly process: %s", line)
                self._said.append(line)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        while True:
            try:
                message = _recv(self._proc.stdout)
            except (OSError, EOFError, pickle.UnpicklingError):
                message = None
            if message is None:
                code = self._proc.wait()
                self._stderr.join(timeout=5)
                last = f": {self._said[-1]}" if self._said else ""
                message = (
                    "error",
                    EncodeError(f"the assembly process ended unexpectedly (exit code {code}){last}"),
                    "",
                )
            if message[0] == "frames":
                self.done = message[1]
                continue
            if message[0] == "done":
                self.done = self.total_frames
            self._outcome = message
            self._finished.set()
            return

    def publish(self, i: int, path: Path, frames: int) -> None:
        self._write(("publish", i, str(path), frames))

    def frames(self, poll_s: float = 0.25) -> Iterator[int]:
        """The frames encoded so far, every ``poll_s`` (so the caller can report progress and check
        for a stop) until the child has finished or failed."""
        while not self._finished.wait(poll_s):
            yield self.done
        yield self.done

    def result(self) -> dict[str, object]:
        """What the finished video was verified to hold; the child's error raised here."""
        self._finished.wait()
        self._close()
        if self._outcome[0] == "done":
            self.stills = self._outcome[2]
            return self._outcome[1]
        _, exc, trace = self._outcome
        if trace and hasattr(exc, "add_note"):  # Python 3.11+: the child's traceback goes with it
            exc.add_note(f"in the assembly process:\n{trace}")
        raise exc

    def cancel(self) -> None:
        """Stop the child (it removes its temp file; the previous output stays) and wait for it."""
        self._write(("cancel",))
        self._close()

    def _close(self) -> None:
        with self._lock:
            if self._proc.stdin is not None and not self._proc.stdin.closed:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)
        self._stderr.join(timeout=5)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any exception that does not survive the trip
        return EncodeError(f"assembly failed: {type(exc).__name__}: {exc}")


def main() -> int:
    """The child's entry (started by :class:`AssemblyProcess`)."""
    import traceback

    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing else may write into the message channel: print() goes to stderr
    inbox = sys.stdin.buffer
    start = _recv(inbox)
    if start is None or start[0] != "start":
        return 2
    _, plan, audio, out, background = start
    if background:
        os.nice(10)  # before any thread or ffmpeg process is started: they inherit it

    from mvgen.media.assemble import AssemblyCancelled, SlotClips, assemble
    from mvgen.timeline import middle_frame

    slots = SlotClips()
    cancelled = threading.Event()
    terminated: list[str] = []  # set by a SIGTERM sent to this process itself

    def stop(signum: int, _frame: object) -> None:
        terminated.append(signal.Signals(signum).name)
        cancelled.set()
        slots.cancel()

    signal.signal(signal.SIGTERM, stop)  # stop at the next frame, removing the temp file

    def listen() -> None:
        while True:
            try:
                message = _recv(inbox)
            except (OSError, EOFError, pickle.UnpicklingError):
                message = None
            if message is None or message[0] == "cancel":
                cancelled.set()
                slots.cancel()
                return
            _, i, path, frames = message
            slots.publish(i, Path(path), frames)

    threading.Thread(target=listen, name="inbox", daemon=True).start()

    reported = [0.0]
    slot_starts: set[int] = set()

    def on_frame(k: int) -> None:
        """Called before output frame k is composed: k frames are with the encoder. Reported every
        REPORT_S, and at each slot's first frame (where the assembly may wait for the model)."""
        if cancelled.is_set():
            raise AssemblyCancelled("the render stopped")
        now = time.monotonic()
        if now - reported[0] >= REPORT_S or k in slot_starts:
            _send(channel, ("frames", k))
            reported[0] = now

    try:
        slot_starts.update(shot.start_frame for shot in plan.shots)
        stills: dict[int, Any] = {middle_frame(shot): None for shot in plan.shots}
        info = assemble(plan, slots, audio, out, on_frame=on_frame, stills=stills)
        outcome: tuple[Any, ...] = ("done", info, stills)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        err = exc
        if terminated:
            err = EncodeError(
                f"{out}: the assembly process was stopped ({terminated[0]}); the previous {out.name} (if any) "
                "is untouched",
                hint="re-run: finished shots are cached",
            )
        trace = "" if isinstance(err, EncodeError) else traceback.format_exc()
        outcome = ("error", _picklable(err), trace)
    with contextlib.suppress(OSError):
        _send(channel, outcome)
    sys.stderr.flush()
    # No interpreter teardown: the inbox thread may still be blocked reading the parent's pipe.
    os._exit(0 if outcome[0] == "done" else 1)
