"""Per-shot clips in the cache: the generated frames, stored losslessly (UT Video, planar RGB, in
Matroska) at the model's native frame rate. Lossless because every frame is re-encoded once more at
assembly; UT Video because assembly decodes every clip again and it decodes about five times faster
than lossless H.264 (older entries in that format are still read)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from mvgen.errors import EncodeError
from mvgen.ffmpeg import finish_ffmpeg_writer, open_ffmpeg_writer


def write_clip(path: Path, frames: np.ndarray, fps: float) -> None:
    """Write uint8 frames ``(n, h, w, 3)`` to ``path`` as a lossless clip."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise EncodeError(
            f"{path.name}: expected uint8 frames (n, h, w, 3), got {frames.dtype} {frames.shape}"
        )
    n, h, w, _ = frames.shape
    proc = open_ffmpeg_writer(
        [
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:.6g}", "-i", "-",
            "-c:v", "utvideo", "-pred", "left", "-pix_fmt", "gbrp", "-fflags", "+bitexact", "-f", "matroska", str(path),
        ]
    )  # fmt: skip
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # ffmpeg died; finish_ffmpeg_writer reports why
        proc.stdin.write(np.ascontiguousarray(frames).tobytes())
    finish_ffmpeg_writer(proc, what=f"writing clip {path.name}")


def read_clip(path: Path) -> np.ndarray:
    """All frames of one cached clip as uint8 (n, h, w, 3). (Not moviepy's reader: it counts frames
    from the duration and drops the last one of a short clip.)"""
    from mvgen.ffmpeg import decode_rgb

    raw, w, h = decode_rgb(path, what=f"reading clip {path.name}")
    n = len(raw) // (w * h * 3)
    if n == 0:
        raise EncodeError(f"{path}: cached clip has no frames (delete it or re-run with --force)")
    return np.frombuffer(raw, np.uint8, count=n * w * h * 3).reshape(n, h, w, 3).copy()


def read_last_frame(path: Path) -> np.ndarray:
    """The last frame of a cached clip, exactly as generated (the clip is lossless)."""
    return np.ascontiguousarray(read_clip(path)[-1])


def read_frames_at(path: Path, indices: list[int], width: int, height: int) -> dict[int, np.ndarray]:
    """The frames of a video at the given indices (one decoding pass), as uint8 (h, w, 3)."""
    from mvgen.ffmpeg import run_ffmpeg_bytes

    wanted = sorted(set(indices))
    if not wanted:
        return {}
    select = "+".join(f"eq(n\\,{i})" for i in wanted)
    raw = run_ffmpeg_bytes(
        ["-i", str(path), "-vf", f"select={select}", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        what=f"reading frames of {path.name}",
    )  # fmt: skip
    size = width * height * 3
    frames = [np.frombuffer(raw[k * size : (k + 1) * size], np.uint8).reshape(height, width, 3)
              for k in range(len(raw) // size)]  # fmt: skip
    return dict(zip(wanted, frames, strict=False))


class ClipReader:
    """One cached clip's frames in order, decoded by ffmpeg in its own process (and scaled there to
    ``size`` with bicubic filtering when the clip is smaller). A thread reads up to ``PREFETCH``
    frames ahead, so the decoder works while the caller composes and the encoder encodes; memory
    stays a few frames per open clip.

    ``get(j)`` moves forward to frame j (a retimed slot asks for each source frame once or more, in
    order) and holds the last frame past the end; asking for an earlier frame is an error."""

    PREFETCH = 3

    def __init__(self, path: Path, n_frames: int, size: tuple[int, int]) -> None:
        import queue
        import threading

        from mvgen.ffmpeg import open_ffmpeg_reader

        self.path, self.n_frames, (self.width, self.height) = path, n_frames, size
        self._size = self.width * self.height * 3
        scale = f"scale={self.width}:{self.height}:flags=bicubic+accurate_rnd+full_chroma_int"
        self._proc = open_ffmpeg_reader(
            ["-threads", "1", "-i", str(path), "-map", "0:v:0", "-vf", scale, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        )  # fmt: skip
        self.pos = -1
        self._frame: np.ndarray | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(self.PREFETCH)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._prefetch, name=f"decode {path.name}", daemon=True)
        self._thread.start()

    def _prefetch(self) -> None:
        import queue

        assert self._proc.stdout is not None
        for _ in range(self.n_frames):
            try:
                raw = self._proc.stdout.read(self._size)
            except (OSError, ValueError):  # closed under us
                raw = b""
            item = raw if len(raw) == self._size else None
            while not self._closed.is_set():
                try:
                    self._queue.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if item is None or self._closed.is_set():
                return

    def get(self, j: int) -> np.ndarray:
        j = min(max(j, 0), self.n_frames - 1)
        if j < self.pos:
            raise ValueError(f"{self.path.name}: frame {j} asked for after frame {self.pos}")
        while self.pos < j:
            raw = self._queue.get()
            if raw is None:
                why = self._stderr()
                raise EncodeError(
                    f"{self.path}: cached clip ends at frame {self.pos + 1} of {self.n_frames}"
                    + (f" ({why})" if why else "")
                    + "; delete it or re-run with --force"
                )
            self._frame = np.frombuffer(raw, np.uint8).reshape(self.height, self.width, 3)
            self.pos += 1
        assert self._frame is not None
        return self._frame

    def _stderr(self) -> str:
        from mvgen.ffmpeg import last_error_line

        assert self._proc.stderr is not None
        if self._proc.stderr.closed:
            return ""
        self._proc.wait()  # stdout is at its end: ffmpeg has finished or failed
        said = last_error_line(self._proc.stderr.read())
        self.close()
        return said

    def close(self) -> None:
        self._closed.set()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._thread.join()
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()


def clip_frame_count(path: Path) -> int:
    """Frames in a video file, counted by demuxing it (no decoding)."""
    import re

    from mvgen.ffmpeg import run_ffmpeg

    text = run_ffmpeg(
        ["-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"], what=f"counting {path.name}"
    )
    found = re.findall(r"frame=\s*(\d+)", text)
    if not found:
        raise EncodeError(f"{path}: no video frames (delete it or re-run with --force)")
    return int(found[-1])
