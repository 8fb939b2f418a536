"""Assembly: retime each cached clip to its slot, concatenate, mux the original audio, encode.

Frames are streamed: moviepy pulls one output frame at a time from a frame function that maps the
output frame index to (shot, source frame) with integer arithmetic, so every cut lands exactly on
the planned frame; only the current shot's clip is held in memory.
"""

from __future__ import annotations

import bisect
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mvgen.audio.probe import AudioInfo
from mvgen.errors import EncodeError
from mvgen.ffmpeg import probe_streams, run_ffmpeg
from mvgen.files import atomic_path, is_disk_full
from mvgen.media.clips import read_clip
from mvgen.timeline import RenderPlan

log = logging.getLogger(__name__)

FADE_S = 0.5  # audio fade-out when fit: trim ends the video before the song ends

# BT.709 conversion and tags: sRGB frames converted with the 709 matrix and labelled as such, so
# players do not guess BT.601 and shift the colours.
H264_PARAMS = [
    "-vf", "scale=out_color_matrix=bt709:out_range=tv,"
    "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv",
    "-crf", "18",
]  # fmt: skip


class _Timeline:
    """Output frame index -> frame, for moviepy's frame function."""

    def __init__(self, plan: RenderPlan, clips: list[Path], on_frame: Callable[[int], None]) -> None:
        self.plan = plan
        self.clips = clips
        self.starts = [s.start_frame for s in plan.shots]
        self.on_frame = on_frame
        self._current: int | None = None
        self._frames: np.ndarray | None = None
        self._resized: dict[int, np.ndarray] = {}

    def _load(self, i: int) -> np.ndarray:
        if self._current != i:
            self._frames = read_clip(self.clips[i])
            self._current = i
            self._resized = {}
        assert self._frames is not None
        return self._frames

    def frame(self, t: float) -> np.ndarray:
        plan = self.plan
        k = min(max(int(round(t * plan.fps)), 0), plan.total_frames - 1)
        i = bisect.bisect_right(self.starts, k) - 1
        shot = plan.shots[i]
        frames = self._load(i)
        n_src = len(frames)
        # Retime: the clip's n_src frames spread evenly over the slot's full length (nearest frame).
        j = min(n_src - 1, ((k - shot.start_frame) * n_src) // max(1, shot.slot_frames))
        self.on_frame(k)
        img = frames[j]
        if img.shape[1] != plan.width or img.shape[0] != plan.height:
            cached = self._resized.get(j)
            if cached is None:
                from PIL import Image

                cached = np.asarray(Image.fromarray(img).resize((plan.width, plan.height), Image.BICUBIC))
                self._resized = {j: cached}
            img = cached
        return img


def assemble(
    plan: RenderPlan,
    clips: list[Path],
    audio: AudioInfo,
    out: Path,
    *,
    on_frame: Callable[[int], None] = lambda k: None,
    x264_preset: str = "medium",
) -> dict[str, object]:
    """Write ``out`` (atomically) from one cached clip per plan shot; return what ffmpeg reads back."""
    from moviepy import VideoClip

    if len(clips) != len(plan.shots):
        raise EncodeError(f"assembly needs one clip per shot ({len(plan.shots)}), got {len(clips)}")
    timeline = _Timeline(plan, clips, on_frame)
    # +0.5 frame: moviepy writes int(duration * fps) frames, and float error must not drop the last.
    clip = VideoClip(frame_function=timeline.frame, duration=(plan.total_frames + 0.5) / plan.fps)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".video.mp4", dir=out.parent)
    os.close(fd)
    video_tmp = Path(name)
    try:
        try:
            clip.write_videofile(
                str(video_tmp),
                fps=plan.fps,
                codec="libx264",
                audio=False,
                preset=x264_preset,
                ffmpeg_params=H264_PARAMS,
                pixel_format="yuv420p",
                logger=None,
            )
        except OSError as exc:
            raise _encode_error(out, exc) from None
        finally:
            clip.close()
        with atomic_path(out, suffix=".mp4") as final_tmp:
            try:
                _mux(plan, video_tmp, audio, final_tmp)
            except EncodeError as exc:
                raise _encode_error(out, exc) from None
            info = verify(final_tmp, plan)
    except OSError as exc:
        raise _encode_error(out, exc) from None
    finally:
        video_tmp.unlink(missing_ok=True)
    return info


def _nearly_full(folder: Path) -> bool:
    """Checked when an encode step fails, before its temp file is removed: moviepy does not report
    ffmpeg's own write errors, so a full disk first shows up as a damaged file one step later."""
    import shutil

    try:
        return shutil.disk_usage(folder).free < 1024 * 1024
    except OSError:
        return False


def _encode_error(out: Path, exc: BaseException) -> EncodeError:
    if is_disk_full(exc) or _nearly_full(out.parent):
        return EncodeError(
            f"{out}: disk full while writing the video; the previous {out.name} (if any) is untouched",
            hint=f"free space in {out.parent} and re-run: finished shots are cached",
        )
    if isinstance(exc, EncodeError):
        return exc
    return EncodeError(
        f"{out}: encoding the video failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    )


def _mux(plan: RenderPlan, video: Path, audio: AudioInfo, dest: Path) -> None:
    """The video stream copied, the source audio encoded once to AAC at its own rate and channel
    count (no downmix), cut to the video's length, moov atom up front."""
    bitrate = min(512, 96 * max(1, audio.channels))
    args = ["-y", "-i", str(video), "-i", str(audio.path), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy"]
    args += ["-c:a", "aac", "-b:a", f"{bitrate}k", "-ar", str(audio.sample_rate), "-ac", str(audio.channels)]
    if plan.fit == "trim" and plan.duration_s < audio.duration_s - 1e-3:
        fade_start = max(0.0, plan.duration_s - FADE_S)
        args += ["-af", f"afade=t=out:st={fade_start:.6f}:d={plan.duration_s - fade_start:.6f}"]
    args += ["-t", f"{plan.duration_s:.6f}", "-movflags", "+faststart", "-f", "mp4", str(dest)]
    run_ffmpeg(args, what=f"muxing audio into {dest.name}")


def verify(path: Path, plan: RenderPlan) -> dict[str, object]:
    """Read the written file back: H.264 + AAC, the planned size, and the planned length."""
    info = probe_streams(path)
    problems = []
    if info.get("video_codec") != "h264":
        problems.append(f"video codec {info.get('video_codec')}")
    if info.get("audio_codec") != "aac":
        problems.append(f"audio codec {info.get('audio_codec')}")
    if (info.get("width"), info.get("height")) != (plan.width, plan.height):
        problems.append(f"size {info.get('width')}x{info.get('height')}")
    duration = info.get("duration_s")
    if not isinstance(duration, float) or abs(duration - plan.duration_s) > 2.0 / plan.fps + 0.05:
        problems.append(f"duration {duration}")
    if problems:
        raise EncodeError(f"{path}: the written video failed verification: {', '.join(problems)}")
    return info
