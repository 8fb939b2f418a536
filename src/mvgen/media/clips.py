"""Per-shot clips in the cache: the generated frames, stored losslessly (H.264 RGB, qp 0) at the
model's native frame rate. Lossless because every frame is re-encoded once more at assembly."""

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
            "-c:v", "libx264rgb", "-qp", "0", "-preset", "ultrafast", "-pix_fmt", "rgb24",
            "-f", "mp4", str(path),
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
