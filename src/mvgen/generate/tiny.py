"""The built-in tiny models (``tiny`` = Wan, ``tiny-vace``, ``tiny-ltx``, ``tiny-cogvideox``, ``tiny-hunyuan``,
and the 2026 families' ``tiny-ltx2``, ``tiny-hunyuan15``, ``tiny-skyreels``, ``tiny-kandinsky``,
``tiny-anyflow``, ``tiny-helios``):
each family's real diffusers pipelines at a few hundred kB to a few MB, put into the cache on first
use and loaded from there through ``DiffusionPipeline.from_pretrained`` exactly like a real model.

``tiny`` and ``tiny-vace`` are trained (``scripts/train_tiny.py``, ``scripts/train_tiny_vace.py``;
their weights ship with the package): ``tiny`` paints the colour its prompt names, textured with
darker discs and squares, so a render can be checked by eye and by the tests (what it does with
motion words: docs/tiny_model.md); ``tiny-vace`` paints its reference picture's colour. The other families' tiny
models are built from configs in code with random (seeded) weights: they render texture, and exist
so that every family's code path runs on any CPU.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

from mvgen.errors import ConfigError
from mvgen.families import FAMILIES
from mvgen.files import cache_root

TINY_VERSION = 1


def tiny_root(family: str = "wan") -> Path:
    version = max(TINY_VERSION, FAMILIES[family].tiny_version)
    name = f"tiny-v{version}" if family == "wan" else f"tiny-{family}-v{version}"
    shipped = FAMILIES[family].tiny_weights
    if shipped is not None:  # trained weights: a new folder when they change (an upgrade of mvgen)
        name += "-" + "".join(_content_tag(f) for f in (shipped, *FAMILIES[family].tiny_shares))
    return cache_root() / "models" / name


@cache
def _content_tag(folder: Path) -> str:
    from mvgen.generate.weights import folder_fingerprint

    return folder_fingerprint(folder)[:8]


def ensure_tiny(family: str = "wan") -> Path:
    """The folder of a family's tiny text-to-video pipeline, built on first use (atomically, under
    a lock so that two processes starting together build it once)."""
    from filelock import FileLock

    build = FAMILIES[family].build_tiny
    if build is None:
        raise ConfigError(f"there is no built-in tiny model for the {FAMILIES[family].label} family")
    root = tiny_root(family)
    if (root / "t2v" / "model_index.json").is_file():
        return root / "t2v"
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not (root / "t2v" / "model_index.json").is_file():
            from mvgen.generate.weights import quiet_libraries

            quiet_libraries()
            tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
            try:
                build(tmp)
                if root.exists():
                    shutil.rmtree(root)
                tmp.rename(root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return root / "t2v"
