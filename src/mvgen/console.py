"""Everything the CLI shows: progress (rich on a TTY, timestamped lines otherwise, JSON lines on
request, optionally teed to a log file), the batch summary and error rendering. Library code never
prints; it sends ProgressEvents here."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from datetime import datetime
from typing import TextIO

from mvgen.counts import RenderCounts, plan_line
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
    """``mvgen: error: ...`` (a line per error of a check that found several) and an optional
    ``hint: ...`` line, on stderr (and the log file)."""
    messages = err.lines if isinstance(err, MvgenError) else [err]
    hint = err.hint if isinstance(err, MvgenError) else hint
    lines = ["mvgen: error: " + _one_line(m) for m in messages] + (
        ["hint: " + _one_line(hint)] if hint else []
    )
    for out in (stream or sys.stderr, log_stream):
        if out is None:
            continue
        prefix = datetime.now().strftime("%Y-%m-%d %H:%M:%S ") if out is log_stream else ""
        for line in lines:
            print(prefix + line, file=out, flush=True)


def _take(e: ProgressEvent) -> str:
    return f" take {e.extra['take']}/{e.extra['takes']}" if e.extra.get("takes", 1) > 1 else ""


def _duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def describe(e: ProgressEvent) -> str | None:
    """The plain-text line for an event (None: not worth a line)."""
    if e.event == "stage":
        return f"[{e.stage}] {e.message or ''}".rstrip()
    if e.event == "shot_start":
        return f"shot {e.index + 1}/{e.total} {e.shot}{_take(e)}: generating ({e.steps} steps)"
    if e.event == "shot_done":
        eta = e.extra.get("eta_s")
        left = f", about {_duration(eta)} left" if eta is not None and e.index + 1 < (e.total or 0) else ""
        return f"shot {e.index + 1}/{e.total} {e.shot}{_take(e)}: done in {e.seconds:.1f}s{left}"
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
    if e.event == "done" and e.extra.get("preview"):
        return f"wrote the animatic {e.message} ({e.seconds:.1f}s)"
    if e.event == "done":
        counts = RenderCounts(
            **{k: e.extra.get(k, 0) for k in ("slots", "shots", "generated", "cached", "takes")}
        )
        if e.extra.get("up_to_date"):
            return f"up to date: {e.message} ({counts.describe()}; not re-encoded, {e.seconds:.1f}s)"
        return f"wrote {e.message} ({counts.describe()}, {e.seconds:.1f}s)"
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
            TextColumn("{task.fields[eta]}"), console=self.console, transient=False,
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
                self.shots_task = p.add_task("shots", total=e.total, eta="")
            if e.stage == "assemble" and e.total:
                self.encode_task = p.add_task("encode", total=e.total, eta="")
        elif e.event == "shot_start":
            if self.steps_task is not None:
                p.remove_task(self.steps_task)
            self.steps_task = p.add_task(f"  {e.shot}{_take(e)}", total=e.steps, eta="")
        elif e.event == "step" and self.steps_task is not None:
            p.update(self.steps_task, completed=e.step)
            if self.shots_task is not None and "eta_s" in e.extra:
                p.update(self.shots_task, eta=f"about {_duration(e.extra['eta_s'])} left")
        elif e.event in ("shot_done", "shot_failed") and self.shots_task is not None:
            if e.extra.get("take", 1) == e.extra.get("takes", 1):  # the bar counts shots, not takes
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


def print_cut_sheet(sheet, source: str, stream: TextIO) -> None:
    """``mvgen plan``: the cut sheet as a table, then the totals."""
    from rich.console import Console as RichOut
    from rich.table import Table

    from mvgen.cutsheet import cast_note
    from mvgen.timeline import timecode

    p = sheet.plan
    out = RichOut(file=stream, width=None if stream.isatty() else 200, highlight=False, soft_wrap=False)
    from collections import Counter

    retime = Counter(s.retime for s in p.shots).most_common(1)[0][0]  # the video's: most slots use it
    out.print(
        f"{source} | model {p.model} | {p.tempo_bpm:.1f} BPM ({p.beats_per_bar}/4) | fit {p.fit} | "
        f"{p.width}x{p.height} @ {p.fps:g} fps (model renders {p.gen_width}x{p.gen_height} @ {p.native_fps:g}, "
        f"retime {retime})",
        markup=False,
    )
    names = ("#", "id", "start", "end", "beats", "bars", "frames", "seed", "takes", "in", "cast", "clip",
             "est GPU", "warnings", "prompt")  # fmt: skip
    rows = []
    for r in sheet.rows:
        s = r.shot
        how = {"crossfade": "xfade"}.get(s.transition, s.transition)  # how the shot begins (and ends)
        how += f"→{s.ending}" if s.ending and not s.bridge else ""
        clip = {"partly": f"{r.takes_cached}/{s.takes} cached"}.get(r.status, r.status)
        est = (
            "-"
            if r.status in ("cached", "repeat")
            else ("unknown" if r.est_gpu_s is None else f"{r.est_gpu_s:.1f}s")
        )
        rows.append((
            str(s.index + 1), s.id, timecode(s.start_s), timecode(s.end_s), f"{s.length_beats:.2f}",
            f"{s.length_beats / p.beats_per_bar:.2f}", str(s.num_frames), str(s.seed), str(s.takes), how,
            cast_note(s), clip, est, "; ".join([*r.warnings, *([f"retime {s.retime}"] if s.retime != retime else [])]), s.prompt,
        ))  # fmt: skip
    table = Table(box=None, pad_edge=False, header_style="bold")
    for c, name in enumerate(names):
        # Every column but the prompt keeps its full width; the prompt takes what is left.
        widest = max([len(name)] + [len(row[c]) for row in rows])
        table.add_column(name, justify="left" if name in ("id", "in", "cast", "clip", "warnings", "prompt") else "right",
                         no_wrap=True, overflow="ellipsis", min_width=None if name == "prompt" else widest,
                         max_width=60 if name == "prompt" else None)  # fmt: skip
    for row in rows:
        table.add_row(*row)
    out.print(table, markup=False)
    t = sheet.totals()
    est = "unknown (no measured rate for this model yet)" if t["est_gpu_s"] is None else (
        f"{_duration(t['est_gpu_s'])} ({t['rate_source']})"
    )  # fmt: skip
    out.print(
        f"{plan_line(t)} | {p.duration_s:.3f}s, {p.total_frames} frames | est. GPU time {est}", markup=False
    )


class StopFlag:
    """SIGINT/SIGTERM set a flag that the render polls at safe points (between denoising steps,
    shots and encoded frames), so the write in progress finishes and nothing is left half-written.
    A second signal stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        name = signal.Signals(signum).name
        print(
            f"mvgen: {name}: stopping at the next safe point (again to stop now)", file=sys.stderr, flush=True
        )

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread (embedded use): no handlers
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def __call__(self) -> bool:
        return self.requested
