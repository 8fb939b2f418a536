"""The content-addressed shot store.

A shot's clip is keyed by the hash of everything that changes its pixels, never by its position in
the list, so reordering or retiming shots costs no GPU time. An entry is a folder written under a
temporary name and renamed into place: a reader sees a complete entry or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvgen.files import cache_root, current_umask, sweep_stale_temps

# Bump when a change in mvgen (not in the inputs) changes the pixels a shot gets.
GENERATION_VERSION = 1
CLIP_NAME = "clip.mp4"
META_NAME = "meta.json"


def shot_key(
    *,
    model_id: str,
    model_revision: str,
    prompt: str,
    negative: str,
    seed: int,
    width: int,
    height: int,
    num_frames: int,
    steps: int,
    guidance: float,
    max_sequence_length: int,
    image_sha256: str | None = None,
) -> str:
    payload = {
        "v": GENERATION_VERSION,
        "model": model_id,
        "revision": model_revision,
        "prompt": prompt,
        "negative": negative,
        "seed": seed,
        "size": [width, height],
        "frames": num_frames,
        "steps": steps,
        "guidance": round(float(guidance), 6),
        "max_sequence_length": max_sequence_length,
        "image": image_sha256,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


@dataclass(frozen=True)
class CacheEntry:
    key: str
    folder: Path

    @property
    def clip(self) -> Path:
        return self.folder / CLIP_NAME

    def meta(self) -> dict[str, Any]:
        return json.loads((self.folder / META_NAME).read_text(encoding="utf-8"))


class ShotCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or cache_root()) / "shots"

    def _folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> CacheEntry | None:
        folder = self._folder(key)
        # meta.json is written last inside the temp folder, so a complete entry always has it.
        if (folder / META_NAME).is_file() and (folder / CLIP_NAME).is_file():
            return CacheEntry(key, folder)
        return None

    def latents_path(self, key: str) -> Path:
        """Where the denoised latents of a shot wait between sampling and decoding."""
        return self.root.parent / "latents" / f"{key}.safetensors"

    def sweep(self, key: str) -> None:
        """Remove a killed writer's temp folders for ``key`` (call with the key's lock held)."""
        sweep_stale_temps(self._folder(key).parent, key)
        sweep_stale_temps(self.latents_path(key).parent, self.latents_path(key).name)

    def remove(self, key: str) -> None:
        shutil.rmtree(self._folder(key), ignore_errors=True)

    @contextmanager
    def writer(self, key: str, meta: dict[str, Any]) -> Iterator[Path]:
        """Yield a temp folder; the caller writes ``clip.mp4`` into it; on success the folder becomes
        the entry atomically (replacing an old one)."""
        final = self._folder(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=final.parent))
        try:
            yield tmp
            meta_path = tmp / META_NAME
            with open(meta_path, "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700: shared caches need umask
            for child in tmp.iterdir():
                os.chmod(child, 0o666 & ~current_umask())
            if final.exists():
                old = final.with_name(f".{key}.old-{os.getpid()}")
                final.rename(old)
                tmp.rename(final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
