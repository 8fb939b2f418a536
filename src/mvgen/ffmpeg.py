"""The one wrapper around the ffmpeg binary: argv lists only (never a shell), the command logged at
debug level, and the last meaningful stderr line raised as the error. Bottom layer: imports only
``mvgen.errors``, so audio analysis and media assembly can both use it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
from functools import cache
from pathlib import Path

from mvgen.errors import EncodeError, SetupError

log = logging.getLogger(__name__)

_CHANNEL_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "quad": 4,
    "4.0": 4,
    "5.0": 5,
    "5.1": 6,
    "6.1": 7,
    "7.1": 8,
}


@cache
def ffmpeg_exe() -> str:
    """The ffmpeg shipped by imageio-ffmpeg (or IMAGEIO_FFMPEG_EXE)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # RuntimeError when the bundled binary is missing
        raise SetupError(
            f"ffmpeg not found: {exc}", hint="pip install imageio-ffmpeg, or set IMAGEIO_FFMPEG_EXE"
        ) from None


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if not line.startswith(("frame=", "size=", "video:", "[out#")):
            return line
    return lines[-1] if lines else "no output"


def _run(args: list[str], what: str, stdin: bytes | None) -> subprocess.CompletedProcess[bytes]:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin" if stdin is None else "-y", *args]
    log.debug("ffmpeg: %s", cmd)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        if proc.returncode < 0:
            raise EncodeError(f"{what}: ffmpeg was killed by signal {-proc.returncode}")
        raise EncodeError(
            f"{what}: ffmpeg failed: {_last_error_line(proc.stderr.decode('utf-8', 'replace'))}"
        )
    return proc


def run_ffmpeg(args: list[str], *, what: str, stdin: bytes | None = None) -> str:
    """Run ``ffmpeg -hide_banner -nostdin <args>``; return stderr; raise ``EncodeError`` on failure."""
    return _run(args, what, stdin).stderr.decode("utf-8", "replace")


def run_ffmpeg_bytes(args: list[str], *, what: str) -> bytes:
    """Run ffmpeg writing to stdout (``... -``); return what it wrote."""
    return _run(args, what, None).stdout


def decode_rgb(path: Path, *, what: str) -> tuple[bytes, int, int]:
    """Every frame of a video's first stream as packed rgb24 bytes, with the frame width and height
    (read from the same ffmpeg run: one process, every frame, nothing estimated from the duration)."""
    proc = _run(["-i", str(path), "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], what, None)
    v = _VIDEO_RE.search(proc.stderr.decode("utf-8", "replace"))
    if v is None:
        raise EncodeError(f"{what}: no video stream in {path.name}")
    return proc.stdout, int(v.group(3)), int(v.group(4))


@cache
def _pipe_max_size() -> int | None:
    try:
        with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as f:
            return min(int(f.read()), 8 << 20)
    except (OSError, ValueError):
        return None  # not Linux


def widen_pipe(pipe: object) -> None:
    """Raise a pipe's buffer to the system's limit (Linux; 1 MiB by default): raw frames are
    megabytes each, and a 64 KiB pipe would pass one in dozens of wake-ups of both processes."""
    import fcntl

    size = _pipe_max_size()
    if size is not None:
        with contextlib.suppress(OSError, AttributeError):  # not allowed: the default size works
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, size)  # type: ignore[attr-defined]


def open_ffmpeg_writer(args: list[str]) -> subprocess.Popen[bytes]:
    """Start ffmpeg reading raw frames on stdin (the caller writes, closes and waits)."""
    return _start_piped(["-y", *args], writer=True)


def open_ffmpeg_reader(args: list[str]) -> subprocess.Popen[bytes]:
    """Start ffmpeg writing raw frames to stdout (the caller reads, then kills or waits)."""
    return _start_piped(["-nostdin", *args], writer=False)


def _start_piped(args: list[str], *, writer: bool) -> subprocess.Popen[bytes]:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *args]
    log.debug("ffmpeg: %s", cmd)
    pipe = {"stdin": subprocess.PIPE} if writer else {"stdout": subprocess.PIPE}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, **pipe)
    widen_pipe(proc.stdin if writer else proc.stdout)
    return proc


def last_error_line(stderr: bytes) -> str:
    """What a finished ffmpeg said last (progress lines skipped), for an error message."""
    return _last_error_line(stderr.decode("utf-8", "replace")) if stderr.strip() else ""


def abort_ffmpeg_writer(proc: subprocess.Popen[bytes]) -> None:
    """Stop a writer that will not be finished (the caller failed or was cancelled) and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(BrokenPipeError):  # unflushed bytes for a dead process
                pipe.close()


def finish_ffmpeg_writer(proc: subprocess.Popen[bytes], *, what: str) -> None:
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.close()
    with proc.stderr:
        stderr = proc.stderr.read().decode("utf-8", "replace")
    if proc.wait() != 0:
        raise EncodeError(f"{what}: ffmpeg failed: {_last_error_line(stderr)}")


_AUDIO_RE = re.compile(r"Stream #\S+.*?: Audio: [^,]+, (\d+) Hz, ([^,]+)")
_TIME_RE = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")


def probe_audio_stream(path: Path) -> tuple[int, int, float] | None:
    """(sample rate, channels, duration in s) of ``path``'s first audio stream, decoding it with
    ffmpeg to count its real length; None if there is no decodable audio stream."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0", "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    stderr = proc.stderr.decode("utf-8", "replace")
    m = _AUDIO_RE.search(stderr)
    times = _TIME_RE.findall(stderr)
    if proc.returncode != 0 or not m or not times:
        return None
    rate = int(m.group(1))
    layout = m.group(2).strip()
    ch_match = re.match(r"(\d+) channels", layout)
    channels = int(ch_match.group(1)) if ch_match else _CHANNEL_LAYOUTS.get(layout.split("(")[0], 2)
    h, mnt, s = times[-1]
    return rate, channels, int(h) * 3600 + int(mnt) * 60 + float(s)


_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_COMMENT_RE = re.compile(r"^\s+comment\s*: (.*)$", re.MULTILINE)
_VIDEO_RE = re.compile(r"Stream #\S+.*?: Video: (\w+)[^,]*, (\w+)[^,]*(?:\([^)]*\))?.*?, (\d+)x(\d+)")


def probe_streams(path: Path) -> dict[str, object]:
    """What ffmpeg says of a media file's container and first video/audio streams (header only)."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, check=False
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    info: dict[str, object] = {}
    d = _DURATION_RE.search(stderr)
    if d:
        info["duration_s"] = int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3))
    v = _VIDEO_RE.search(stderr)
    if v:
        info.update(video_codec=v.group(1), pix_fmt=v.group(2), width=int(v.group(3)), height=int(v.group(4)))
    a = _AUDIO_RE.search(stderr)
    if a:
        codec = re.search(r"Audio: (\w+)", a.group(0))
        info.update(audio_codec=codec.group(1) if codec else "?", sample_rate=int(a.group(1)))
    c = _COMMENT_RE.search(stderr.split("Duration:")[0])  # the container's tags, not a stream's
    if c:
        info["comment"] = c.group(1).strip()
    return info
