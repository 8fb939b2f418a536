"""Assembly: retime each cached clip to its slot, concatenate, mux the original audio, encode.

Frames are streamed: a frame function (a moviepy clip) maps the output frame index to (shot, source
position) with integer arithmetic, so every cut lands exactly on the planned frame; each open slot's
clip is decoded forward by ffmpeg (a few frames in memory), the frames between generated ones are
synthesised as the shot's ``retime`` says (media/retime.py), and every composed frame goes straight
into one ffmpeg process that encodes the video and muxes the audio in a single pass.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mvgen.audio.probe import AudioInfo
from mvgen.errors import EncodeError
from mvgen.ffmpeg import abort_ffmpeg_writer, finish_ffmpeg_writer, open_ffmpeg_writer, probe_streams
from mvgen.files import atomic_path, is_disk_full
from mvgen.media.clips import ClipReader, clip_frame_count
from mvgen.media.retime import Retimer, to_size
from mvgen.ownership import MARK
from mvgen.timeline import RenderPlan, source_frame, source_position

log = logging.getLogger(__name__)

FADE_S = 0.5  # audio fade-out when fit: trim ends the video before the song ends
STILL_W = 240  # width of the frames kept for the contact sheet (its cell width)

# BT.709 conversion and tags: sRGB frames converted with the 709 matrix and labelled as such, so
# players do not guess BT.601 and shift the colours.
H264_FILTER = [
    "-vf", "scale=out_color_matrix=bt709:out_range=tv,"
    "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv",
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


class SlotClips:
    """Each slot's cached clip (path, frame count), published as it becomes ready. The assembly asks
    for a slot's clip only when it reaches that slot (or the blend before it), so it can run while
    later shots are still being generated; ``cancel`` ends a waiting assembly."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[Path, int]] = {}
        self._cond = threading.Condition()
        self._cancelled = False

    @classmethod
    def of(cls, clips: list[Path], counts: list[int] | None = None) -> SlotClips:
        """All slots ready now (frames counted from the files when ``counts`` is not given)."""
        slots = cls()
        for i, path in enumerate(clips):
            slots.publish(i, path, counts[i] if counts is not None else clip_frame_count(path))
        return slots

    def publish(self, i: int, path: Path, frames: int) -> None:
        with self._cond:
            self._items[i] = (path, frames)
            self._cond.notify_all()

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def get(self, i: int) -> tuple[Path, int]:
        with self._cond:
            while i not in self._items:
                if self._cancelled:
                    raise AssemblyCancelled(f"slot {i} never became ready")
                self._cond.wait(1.0)
            return self._items[i]


class AssemblyCancelled(Exception):
    """The render stopped (a shot failed, or it was interrupted) while the assembly waited."""


class _Timeline:
    """Output frame index -> frame. Each slot's clip is read forward by its own ffmpeg decoder at
    the output size; at most three neighbouring slots are open (a blend needs both sides of its
    cut), each holding one frame: memory does not grow with the list or the length of shots."""

    KEEP = 3

    def __init__(self, plan: RenderPlan, clips: SlotClips, on_frame: Callable[[int], None],
                 stills: dict[int, np.ndarray | None] | None = None) -> None:  # fmt: skip
        self.plan = plan
        self.clips = clips
        self.starts = [s.start_frame for s in plan.shots]
        self.on_frame = on_frame
        self.stills = stills if stills is not None else {}
        self.readers: dict[int, tuple[ClipReader, Retimer]] = {}

    def _reader(self, i: int) -> Retimer:
        slot = self.readers.get(i)
        if slot is None:
            path, n = self.clips.get(i)
            plan, mode = self.plan, self.plan.shots[i].retime
            # nearest: ffmpeg scales to the output size as it decodes; flow and blend work on the
            # clip's own frames and scale what they make (fewer pixels to warp).
            size = (plan.width, plan.height) if mode == "nearest" else (plan.gen_width, plan.gen_height)
            reader = ClipReader(path, n, size)
            slot = self.readers[i] = (reader, Retimer(reader.get, n, mode))
            for old in [j for j in self.readers if abs(j - i) >= self.KEEP - 1]:
                self.readers.pop(old)[0].close()
        return slot[1]

    def close(self) -> None:
        for reader, _ in self.readers.values():
            reader.close()
        self.readers.clear()

    def _source(self, i: int, k: int) -> np.ndarray:
        """Shot i's picture at output frame k (k may lie outside its slot, inside a blend): the
        frames of the clip the slot shows, spread over the slot (held at either end; see
        ``timeline.source_frame`` and ``source_position``), the frames between generated ones made
        by the shot's retime mode (media/retime.py), at output size, through the shot's camera."""
        plan = self.plan
        shot = plan.shots[i]
        slot = self._reader(i)
        shown = min(shot.shown_frames, slot.n_frames)
        if shot.retime == "nearest":
            img = slot.get(
                source_frame(k - shot.start_frame, shown, shot.slot_frames, plan.fps, plan.native_fps)
            )
        else:
            img = slot.at(
                *source_position(k - shot.start_frame, shown, shot.slot_frames, plan.fps, plan.native_fps)
            )
            img = to_size(img, plan.width, plan.height)
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
        img = compose_frame(self.plan, self.starts, t, self._source, self.on_frame)
        k = frame_index(self.plan, t)
        if k in self.stills:  # kept, small, for the contact sheet (no decoding of the video after)
            self.stills[k] = to_size(
                img, STILL_W, max(2, round(STILL_W * img.shape[0] / img.shape[1])), area=True
            )
        return img


def frame_index(plan: RenderPlan, t: float) -> int:
    """The output frame the frame function is asked for at time ``t``."""
    return min(max(int(round(t * plan.fps)), 0), plan.total_frames - 1)


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
    k = frame_index(plan, t)
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


def encoder_threads() -> int:
    """The encoder's threads: one per core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def assemble(
    plan: RenderPlan,
    clips: list[Path] | SlotClips,
    audio: AudioInfo,
    out: Path,
    *,
    on_frame: Callable[[int], None] = lambda k: None,
    threads: int | None = None,
    stills: dict[int, np.ndarray | None] | None = None,
) -> dict[str, object]:
    """Write ``out`` (atomically) from one cached clip per plan shot; return what ffmpeg reads back.

    ``clips`` is a list of paths (all ready) or a :class:`SlotClips` filled while this runs.
    ``stills``: output frame index -> None, each filled with that frame as composed, scaled to
    ``STILL_W`` wide (the contact sheet's)."""
    if not isinstance(clips, SlotClips):
        if len(clips) != len(plan.shots):
            raise EncodeError(f"assembly needs one clip per shot ({len(plan.shots)}), got {len(clips)}")
        clips = SlotClips.of(clips)
    timeline = _Timeline(plan, clips, on_frame, stills)
    try:
        return encode(plan, timeline.frame, audio, out, threads=threads)
    finally:
        timeline.close()


def encode(
    plan: RenderPlan,
    frame_function: Callable[[float], np.ndarray],
    audio: AudioInfo,
    out: Path,
    *,
    preset: str | None = None,
    threads: int | None = None,
) -> dict[str, object]:
    """Encode ``plan.total_frames`` frames (``frame_function(t)``) to H.264 with the source audio
    muxed in the same ffmpeg pass, write ``out`` atomically, and return what ffmpeg reads back.

    The frames are a moviepy clip (the composition layer), pulled one at a time and written
    straight into ffmpeg's stdin: nothing is held but the frame in hand, and the encoder (x264's
    threads, one per core) works in its own process while the next frame is composed."""
    from moviepy import VideoClip

    clip = VideoClip(frame_function=frame_function, duration=(plan.total_frames + 0.5) / plan.fps)
    preset = plan.x264_preset if preset is None else preset
    try:
        with atomic_path(out, suffix=".mp4") as tmp:
            threads = threads or plan.encode_threads or encoder_threads()
            proc = open_ffmpeg_writer(_encoder_args(plan, audio, tmp, preset, threads))
            assert proc.stdin is not None
            try:
                for k in range(plan.total_frames):
                    frame = clip.get_frame(k / plan.fps)
                    if frame.shape != (plan.height, plan.width, 3) or frame.dtype != np.uint8:
                        raise EncodeError(f"frame {k}: {frame.dtype} {frame.shape}, expected the output size")
                    try:
                        proc.stdin.write(np.ascontiguousarray(frame).data)
                    except BrokenPipeError:  # ffmpeg died: finish_ffmpeg_writer says why
                        break
            except BaseException:
                abort_ffmpeg_writer(proc)
                raise
            finally:
                clip.close()
            finish_ffmpeg_writer(proc, what=f"encoding {out.name}")
            info = verify(tmp, plan)
    except (OSError, EncodeError) as exc:
        raise _encode_error(out, exc) from None
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


def _encoder_args(plan: RenderPlan, audio: AudioInfo, dest: Path, preset: str, threads: int) -> list[str]:
    """Raw RGB frames on stdin -> H.264 (BT.709, yuv420p); the source audio encoded once to AAC at
    its own rate and channel count (no downmix), cut to the video's length; moov atom up front."""
    bitrate = min(512, 96 * max(1, audio.channels))
    args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{plan.width}x{plan.height}",
            "-framerate", f"{plan.fps:.10g}", "-i", "-", "-i", str(audio.path), "-map", "0:v:0", "-map", "1:a:0",
            *H264_FILTER, "-c:v", "libx264", "-preset", preset, "-crf", str(plan.crf), "-threads", str(threads),
            "-pix_fmt", "yuv420p"]  # fmt: skip
    args += ["-c:a", "aac", "-b:a", f"{bitrate}k", "-ar", str(audio.sample_rate), "-ac", str(audio.channels)]
    if plan.fit == "trim" and plan.duration_s < audio.duration_s - 1e-3:
        fade_start = max(0.0, plan.duration_s - FADE_S)
        args += ["-af", f"afade=t=out:st={fade_start:.6f}:d={plan.duration_s - fade_start:.6f}"]
    # the mark by which mvgen knows this file as its own (it never overwrites a file it did not write)
    args += ["-metadata", f"comment={MARK}"]
    args += ["-t", f"{plan.duration_s:.6f}", "-movflags", "+faststart", "-f", "mp4", str(dest)]
    return args


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
