"""Everything the CLI shows: progress (rich on a TTY, timestamped lines otherwise, JSON lines on
request, optionally teed to a log file), the batch summary and error rendering. Library code never
prints; it sends ProgressEvents here."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import TextIO

from mvgen.errors import MvgenError
from mvgen.progress import ProgressEvent


def _one_line(text: str) -> str:
    return " ".join(text.split("\n"))


def print_error(
    err: MvgenError | str,
    *,
    hint: str | None = None,
    stream: TextIO | None = None,
    log_stream: TextIO | None = None,
) -> None:
    """``mvgen: error: ...`` and an optional ``hint: ...`` line, on stderr (and the log file)."""
    message = err.message if isinstance(err, MvgenError) else err
    hint = err.hint if isinstance(err, MvgenError) else hint
    lines = ["mvgen: error: " + _one_line(message)] + (["hint: " + _one_line(hint)] if hint else [])
    for out in (stream or sys.stderr, log_stream):
        if out is None:
            continue
        prefix = datetime.now().strftime("%Y-%m-%d %H:%M:%S ") if out is log_stream else ""
        for line in lines:
            print(prefix + line, file=out, flush=True)


def describe(e: ProgressEvent) -> str | None:
    """The plain-text line for an event (None: not worth a line)."""
    if e.event == "stage":
        return f"[{e.stage}] {e.message or ''}".rstrip()
    if e.event == "shot_start":
        return f"shot {e.index + 1}/{e.total} {e.shot}: generating ({e.steps} steps)"
    if e.event == "shot_done":
        return f"shot {e.index + 1}/{e.total} {e.shot}: done in {e.seconds:.1f}s"
    if e.event == "shot_cached":
        return f"shot {e.shot}: cached"
    if e.event == "shot_failed":
        return f"shot {e.shot}: FAILED: {e.message}"
    if e.event == "warning":
        return f"warning: {e.message}"
    if e.event == "info":
        return e.message or ""
    if e.event == "job_start":
        return f"=== job {e.index + 1}/{e.total}: {e.shotlist}"
    if e.event == "job_end":
        err = e.extra.get("error")
        return f"=== job {e.index + 1}/{e.total}: {e.message} in {e.seconds:.1f}s" + (
            f": {err}" if err else ""
        )
    if e.event == "done":
        gen, cached = e.extra.get("generated", 0), e.extra.get("cached", 0)
        return f"wrote {e.message} ({gen} generated, {cached} cached, {e.seconds:.1f}s)"
    return None


class LineConsole:
    """Plain timestamped lines (cron mail, CI logs, log files): no carriage returns, no redraws."""

    def __init__(self, stream: TextIO, quiet: bool = False, full_date: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.full_date = full_date
        self._last_encode = 0.0

    def __call__(self, e: ProgressEvent) -> None:
        if self.quiet and e.event not in ("done", "warning", "shot_failed"):
            return
        if e.event == "encode":
            now = time.monotonic()
            if now - self._last_encode < 5 and e.step != e.steps:
                return
            self._last_encode = now
            text = f"encoded {e.step}/{e.steps} frames"
        else:
            text = describe(e)
            if text is None:
                return
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S" if self.full_date else "%H:%M:%S")
        print(f"{stamp} {text}", file=self.stream, flush=True)


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
            if e.stage == "assemble" and e.total:
                self.encode_task = p.add_task("encode", total=e.total)
        elif e.event == "shot_start":
            if self.steps_task is not None:
                p.remove_task(self.steps_task)
            self.steps_task = p.add_task(f"  {e.shot}", total=e.steps)
        elif e.event == "step" and self.steps_task is not None:
            p.update(self.steps_task, completed=e.step)
        elif e.event in ("shot_done", "shot_failed") and self.shots_task is not None:
            p.advance(self.shots_task)
            if e.event == "shot_failed":
                self.console.print(f"[red]shot {e.shot} failed:[/red] {e.message}")
        elif e.event == "encode" and self.encode_task is not None:
            p.update(self.encode_task, completed=e.step)
        elif e.event in ("warning", "info", "job_start", "job_end", "done"):
            text = describe(e)
            if text:
                self.console.print(("[yellow]" + text + "[/yellow]") if e.event == "warning" else text)
            if e.event in ("done", "job_end"):
                for task in list(p.task_ids):
                    p.remove_task(task)
                self.shots_task = self.steps_task = self.encode_task = None

    def close(self) -> None:
        self.progress.stop()


class Console:
    """What the CLI hands to the library as its progress callback: the display, plus the log file."""

    def __init__(self, display, log_stream: TextIO | None, log_sink) -> None:
        self.display = display
        self.log_stream = log_stream
        self.log_sink = log_sink

    def __call__(self, e: ProgressEvent) -> None:
        self.display(e)
        if self.log_sink is not None:
            self.log_sink(e)

    def close(self) -> None:
        close = getattr(self.display, "close", None)
        if close:
            close()
        if self.log_stream is not None:
            self.log_stream.close()


def make_console(
    log_format: str, quiet: bool = False, stream: TextIO | None = None, log_file: str | None = None
) -> Console:
    stream = stream or sys.stderr
    if log_format == "json":
        display = JsonConsole(stream)
    elif log_format == "auto" and stream.isatty() and not quiet:
        display = RichConsole(stream)
    else:
        display = LineConsole(stream, quiet=quiet)
    log_stream = None
    sink = None
    if log_file:
        from mvgen.errors import ConfigError

        try:
            log_stream = open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed by Console)
        except OSError as exc:
            raise ConfigError(f"--log-file {log_file}: cannot open for appending: {exc.strerror}") from None
        sink = JsonConsole(log_stream) if log_format == "json" else LineConsole(log_stream, full_date=True)
    return Console(display, log_stream, sink)


def print_summary(jobs, stream: TextIO) -> None:
    """The batch's final table: one row per job."""
    print(
        f"{'status':<11} {'gen':>4} {'cached':>6} {'failed':>6} {'seconds':>8}  shot list -> output",
        file=stream,
    )
    for j in jobs:
        print(
            f"{j.status:<11} {j.generated:>4} {j.cached:>6} {j.failed:>6} {j.seconds:>8.1f}  {j.shotlist} -> {j.out or '-'}",
            file=stream,
        )
    done = sum(1 for j in jobs if j.status == "ok")
    print(f"{done}/{len(jobs)} jobs done", file=stream)
