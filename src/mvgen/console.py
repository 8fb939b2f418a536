"""Everything the CLI shows: progress (rich on a TTY, timestamped lines otherwise, JSON lines on
request) and error rendering. Library code never prints; it sends ProgressEvents here."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import TextIO

from mvgen.errors import MvgenError
from mvgen.progress import ProgressEvent


def print_error(err: MvgenError | str, *, hint: str | None = None, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    message = err.message if isinstance(err, MvgenError) else err
    hint = err.hint if isinstance(err, MvgenError) else hint
    # One line: a message with a newline in it (from a library) is folded.
    print("mvgen: error: " + " ".join(message.split("\n")), file=stream)
    if hint:
        print("hint: " + " ".join(hint.split("\n")), file=stream)


class LineConsole:
    """Plain timestamped lines (cron mail, CI logs): no carriage returns, no redraws."""

    def __init__(self, stream: TextIO, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self._last_encode = 0.0

    def _line(self, text: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        print(f"{stamp} {text}", file=self.stream, flush=True)

    def __call__(self, e: ProgressEvent) -> None:
        if self.quiet and e.event != "done":
            return
        if e.event == "stage":
            self._line(f"[{e.stage}] {e.message or ''}".rstrip())
        elif e.event == "shot_start":
            self._line(f"shot {e.index + 1}/{e.total} {e.shot}: generating ({e.steps} steps)")
        elif e.event == "shot_done":
            self._line(f"shot {e.index + 1}/{e.total} {e.shot}: done in {e.seconds:.1f}s")
        elif e.event == "shot_cached":
            self._line(f"shot {e.shot}: cached")
        elif e.event == "encode":
            now = time.monotonic()
            if now - self._last_encode >= 5 or e.step == e.steps:
                self._last_encode = now
                self._line(f"encoded {e.step}/{e.steps} frames")
        elif e.event == "done":
            gen, cached = e.extra.get("generated", 0), e.extra.get("cached", 0)
            self._line(f"wrote {e.message} ({gen} generated, {cached} cached, {e.seconds:.1f}s)")
        elif e.event == "info":
            self._line(e.message or "")


class JsonConsole:
    """One JSON object per line, for machines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, e: ProgressEvent) -> None:
        data = {"time": round(time.time(), 3), **e.to_dict()}
        print(json.dumps(data), file=self.stream, flush=True)


class RichConsole:
    """A live display on a terminal: one bar for shots, one for the current shot's steps."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(file=stream)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console, transient=False,
        )  # fmt: skip
        self.shots_task = None
        self.steps_task = None
        self.encode_task = None
        self.progress.start()

    def __call__(self, e: ProgressEvent) -> None:
        p = self.progress
        if e.event == "stage":
            self.console.print(f"[bold]{e.stage}[/bold] {e.message or ''}")
            if e.stage == "generate" and e.total:
                self.shots_task = p.add_task("shots", total=e.total)
            if e.stage == "assemble":
                self.encode_task = p.add_task("encode", total=e.total)
        elif e.event == "shot_start":
            if self.steps_task is not None:
                p.remove_task(self.steps_task)
            self.steps_task = p.add_task(f"  {e.shot}", total=e.steps)
        elif e.event == "step" and self.steps_task is not None:
            p.update(self.steps_task, completed=e.step)
        elif e.event == "shot_done" and self.shots_task is not None:
            p.advance(self.shots_task)
        elif e.event == "encode" and self.encode_task is not None:
            p.update(self.encode_task, completed=e.step)
        elif e.event == "done":
            self.close()
            gen, cached = e.extra.get("generated", 0), e.extra.get("cached", 0)
            self.console.print(
                f"wrote [bold]{e.message}[/bold] ({gen} generated, {cached} cached, {e.seconds:.1f}s)"
            )

    def close(self) -> None:
        self.progress.stop()


def make_console(log_format: str, quiet: bool = False, stream: TextIO | None = None):
    stream = stream or sys.stderr
    if log_format == "json":
        return JsonConsole(stream)
    if log_format == "auto" and stream.isatty() and not quiet:
        return RichConsole(stream)
    return LineConsole(stream, quiet=quiet)
