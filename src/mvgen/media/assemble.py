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


def ease(u: float) -> float:
    """Smoothstep: starts and ends at rest, so moves have no jolt at either end."""
    u = min(max(u, 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


def camera_window(camera: dict, u: float, width: int, height: int) -> tuple[float, float, float]:
    """(zoom, centre x, centre y) of a shot's camera at slot position ``u`` in [0, 1]: zoom and pan
    eased from their start to their end values; the window is kept inside the frame."""
    e = ease(u)
    z0, z1 = camera["zoom"]
    p0, p1 = camera["pan"]
    zoom = z0 + (z1 - z0) * e
    half_w = width / (2.0 * zoom)
    cx = min(max(width / 2.0 + (p0 + (p1 - p0) * e) * width, half_w), width - half_w)
    return zoom, cx, height / 2.0


PULSE_DECAY_S = 0.15


def pulse_factor(pulse: float, t: float, beats: tuple[float, ...]) -> float:
    """1 + ``pulse`` right on a beat, decaying back to 1 (time constant 0.15 s) before the next."""
    if pulse <= 0 or not beats:
        return 1.0
    i = bisect.bisect_right(beats, t + 1e-9) - 1
    if i < 0:
        return 1.0
    return 1.0 + pulse * float(np.exp(-(t - beats[i]) / PULSE_DECAY_S))


def _crop_zoom(img: np.ndarray, zoom: float, cx: float, cy: float) -> np.ndarray:
    """The window of ``img`` of 1/zoom its size centred at (cx, cy), resampled (bicubic, subpixel)
    back to full size."""
    from PIL import Image

    if abs(zoom - 1.0) < 1e-9 and abs(cx - img.shape[1] / 2.0) < 1e-9 and abs(cy - img.shape[0] / 2.0) < 1e-9:
        return img
    h, w = img.shape[:2]
    inv = 1.0 / zoom
    # PIL's affine maps output (x, y) to input (a*x + b*y + c, d*x + e*y + f).
    coeffs = (inv, 0.0, cx - w * inv / 2.0, 0.0, inv, cy - h * inv / 2.0)
    return np.asarray(Image.fromarray(img).transform((w, h), Image.AFFINE, coeffs, resample=Image.BICUBIC))


def _blend(kind: str, outgoing: np.ndarray, incoming: np.ndarray, pos: float) -> np.ndarray:
    """The frame at ``pos`` (0..1) through a blend from ``outgoing`` to ``incoming``."""
    if kind == "crossfade":
        a = min(max(pos, 0.0), 1.0)
        return (outgoing.astype(np.float32) * (1.0 - a) + incoming.astype(np.float32) * a + 0.5).astype(
            np.uint8
        )
    # zoom: push into the outgoing shot (up to 3x) while the incoming one grows out of its centre.
    from PIL import Image

    e = ease(pos)
    h, w = outgoing.shape[:2]
    frame = _crop_zoom(outgoing, 1.0 + 2.0 * e, w / 2.0, h / 2.0).copy()
    iw, ih = int(round(w * e)), int(round(h * e))
    if iw >= 2 and ih >= 2:
        small = np.asarray(Image.fromarray(incoming).resize((iw, ih), Image.BICUBIC))
        x0, y0 = (w - iw) // 2, (h - ih) // 2
        frame[y0 : y0 + ih, x0 : x0 + iw] = small
    return frame


class _Timeline:
    """Output frame index -> frame, for moviepy's frame function. Holds at most the clips of three
    neighbouring shots (a blend needs both sides of its cut): memory does not grow with the list."""

    KEEP = 3

    def __init__(self, plan: RenderPlan, clips: list[Path], on_frame: Callable[[int], None]) -> None:
        self.plan = plan
        self.clips = clips
        self.starts = [s.start_frame for s in plan.shots]
        self.on_frame = on_frame
        self._loaded: dict[int, np.ndarray] = {}
        self._resized: dict[tuple[int, int], np.ndarray] = {}

    def _load(self, i: int) -> np.ndarray:
        if i not in self._loaded:
            self._loaded[i] = read_clip(self.clips[i])
            for old in [j for j in self._loaded if abs(j - i) >= self.KEEP - 1 and j != i]:
                del self._loaded[old]
            self._resized = {key: v for key, v in self._resized.items() if key[0] in self._loaded}
        return self._loaded[i]

    def _source(self, i: int, k: int) -> np.ndarray:
        """Shot i's picture at output frame k (k may lie outside its slot, inside a blend): the
        clip retimed over the slot (nearest frame, held at either end), at output size, through
        the shot's camera."""
        plan = self.plan
        shot = plan.shots[i]
        frames = self._load(i)
        n_src = len(frames)
        j = min(n_src - 1, max(0, ((k - shot.start_frame) * n_src) // max(1, shot.slot_frames)))
        img = self._resized.get((i, j))
        if img is None:
            img = frames[j]
            if img.shape[1] != plan.width or img.shape[0] != plan.height:
                from PIL import Image

                img = np.asarray(Image.fromarray(img).resize((plan.width, plan.height), Image.BICUBIC))
            self._resized = {key: v for key, v in self._resized.items() if key[0] != i}
            self._resized[(i, j)] = img
        if shot.camera is not None:
            span_start, span_frames = shot.span or (shot.start_frame, shot.slot_frames)
            u = (k - span_start + 0.5) / max(1, span_frames)
            zoom, cx, cy = camera_window(shot.camera, u, plan.width, plan.height)
            zoom *= pulse_factor(shot.camera.get("pulse", 0.0), k / plan.fps, plan.beats_s)
            img = _crop_zoom(
                img, zoom, min(max(cx, plan.width / (2 * zoom)), plan.width * (1 - 1 / (2 * zoom))), cy
            )
        return img

    def frame(self, t: float) -> np.ndarray:
        return compose_frame(self.plan, self.starts, t, self._source, self.on_frame)


def compose_frame(
    plan: RenderPlan,
    starts: list[int],
    t: float,
    source: Callable[[int, int], np.ndarray],
    on_frame: Callable[[int], None],
) -> np.ndarray:
    """The output frame at time ``t``: slot i's picture ``source(i, k)`` at output frame k, blended
    with its neighbour's inside a crossfade or zoom centred on their cut (the render and the
    animatic share this, so their cuts and blends are the same)."""
    k = min(max(int(round(t * plan.fps)), 0), plan.total_frames - 1)
    i = bisect.bisect_right(starts, k) - 1
    on_frame(k)
    img = source(i, k)
    shot = plan.shots[i]
    nxt = plan.shots[i + 1] if i + 1 < len(plan.shots) else None
    if shot.blend != "cut" and k < shot.start_frame + shot.blend_frames - shot.blend_frames // 2:
        pos = (k - (shot.start_frame - shot.blend_frames // 2) + 0.5) / shot.blend_frames
        img = _blend(shot.blend, source(i - 1, k), img, pos)
    elif nxt is not None and nxt.blend != "cut" and k >= nxt.start_frame - nxt.blend_frames // 2:
        pos = (k - (nxt.start_frame - nxt.blend_frames // 2) + 0.5) / nxt.blend_frames
        img = _blend(nxt.blend, img, source(i + 1, k), pos)
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
    if len(clips) != len(plan.shots):
        raise EncodeError(f"assembly needs one clip per shot ({len(plan.shots)}), got {len(clips)}")
    timeline = _Timeline(plan, clips, on_frame)
    return encode(plan, timeline.frame, audio, out, x264_preset=x264_preset)


def encode(
    plan: RenderPlan,
    frame_function: Callable[[float], np.ndarray],
    audio: AudioInfo,
    out: Path,
    *,
    x264_preset: str = "medium",
) -> dict[str, object]:
    """Encode ``plan.total_frames`` frames (``frame_function(t)``) to H.264, mux the source audio,
    and write ``out`` atomically; return what ffmpeg reads back from it."""
    from moviepy import VideoClip

    # +0.5 frame: moviepy writes int(duration * fps) frames, and float error must not drop the last.
    clip = VideoClip(frame_function=frame_function, duration=(plan.total_frames + 0.5) / plan.fps)
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
