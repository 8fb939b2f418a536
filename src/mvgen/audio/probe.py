"""Check an audio file before anything expensive: does it exist, decode, and make sense?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mvgen.errors import AudioError

MIN_DURATION_S = 2.0
MAX_DURATION_S = 3 * 3600.0


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    duration_s: float


def _probe_soundfile(path: Path) -> AudioInfo | None:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # libsndfile says "not a format I know" in many ways
        return None
    if info.samplerate <= 0 or info.channels <= 0:
        return None
    return AudioInfo(path, int(info.samplerate), int(info.channels), float(info.frames) / info.samplerate)


def _probe_ffmpeg(path: Path) -> AudioInfo | None:
    """Fallback for formats libsndfile lacks (AAC/M4A...): decode with ffmpeg and count."""
    from mvgen.ffmpeg import probe_audio_stream

    found = probe_audio_stream(path)
    return AudioInfo(path, *found) if found is not None else None


def _check_decodes(info: AudioInfo) -> None:
    """Headers can lie (a 10-hour header over 1 s of data): decode the last second to be sure."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(info.path)) as f:
            if f.frames <= 0:
                raise AudioError(f"{info.path}: the audio file holds no samples")
            f.seek(max(0, f.frames - info.sample_rate))
            block = f.read(info.sample_rate, dtype="float32")
            if len(block) == 0:
                raise AudioError(
                    f"{info.path}: the audio file is truncated (its header claims more than it holds)"
                )
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(
            f"{info.path}: the audio file is damaged or truncated ({str(exc).splitlines()[0]})",
            hint="re-export the track as WAV or FLAC",
        ) from None


def probe_audio(path: str | Path) -> AudioInfo:
    """Sample rate, channels and duration of ``path``; ``AudioError`` (exit 2) when it is unusable."""
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: audio file not found")
    if p.is_dir():
        raise AudioError(f"{p}: is a folder, not an audio file")
    try:
        if p.stat().st_size == 0:
            raise AudioError(f"{p}: the audio file is empty (0 bytes)")
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise AudioError(f"{p}: cannot read the audio file: {exc.strerror}") from None
    info = _probe_soundfile(p)
    if info is not None:
        _check_decodes(info)
    else:
        info = _probe_ffmpeg(p)
        if info is None:
            raise AudioError(
                f"{p}: not a readable audio file (no audio stream could be decoded)",
                hint="use WAV, FLAC, OGG, MP3 or M4A",
            )
    if info.duration_s < MIN_DURATION_S:
        raise AudioError(
            f"{p}: the track is {info.duration_s:.2f} s long; mvgen needs at least {MIN_DURATION_S:.0f} s of audio",
            hint=f"use a track of at least {MIN_DURATION_S:.0f} s (a beat grid override cannot lengthen it)",
        )
    if info.duration_s > MAX_DURATION_S:
        raise AudioError(f"{p}: the track is {info.duration_s / 3600:.1f} h long; the limit is 3 h")
    return info
