"""Stills a shot list names (a shot's `image:`, a cast member's `images:`): found, checked and hashed
before anything loads (prepare.py). media/stills.py turns one into a start frame."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from mvgen.errors import ConfigError

MIN_STILL_SIDE = 64  # smaller pictures carry too little for a start frame or an identity reference
MAX_STILL_PIXELS = 64_000_000  # a bigger "picture" is more likely a mistake (and a memory risk)


@dataclass(frozen=True)
class StillFile:
    """A still found and read: its absolute path and content hash."""

    path: str
    sha256: str


def find_still(written: str, base_dir: Path, where: str) -> StillFile:
    """The still at ``written`` (relative to the shot list's folder), checked: it exists, is a picture
    Pillow reads, and is at least ``MIN_STILL_SIDE`` pixels a side. ``ConfigError`` names ``where``."""
    from PIL import Image, UnidentifiedImageError

    path = (base_dir / Path(written).expanduser()).resolve()
    if not path.exists():
        raise ConfigError(f"{where}: {written} not found (looked in {path.parent})")
    if not path.is_file():
        raise ConfigError(f"{where}: {written} is not a file")
    try:
        data = path.read_bytes()  # read once: hashed, and decoded from memory
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if width * height > MAX_STILL_PIXELS:
                raise ConfigError(
                    f"{where}: {written} is {width}x{height}: too large for a still; scale it down"
                )
            im.load()  # a truncated or corrupt file fails here, not mid-render
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a picture Pillow can read"
        raise ConfigError(
            f"{where}: cannot read {written}: {why}", hint="use a PNG, JPEG or WebP file"
        ) from None
    if min(width, height) < MIN_STILL_SIDE:
        raise ConfigError(
            f"{where}: {written} is {width}x{height}; a still needs at least {MIN_STILL_SIDE} px a side"
        )
    return StillFile(str(path), hashlib.sha256(data).hexdigest())


def still_digest(sha256: str, fit: str) -> str:
    """What a still puts into a clip's key in place of a chained frame's hash: its file's content
    and the fitting rule (the size is in the key already)."""
    return hashlib.sha256(f"still:{fit}:{sha256}".encode()).hexdigest()
