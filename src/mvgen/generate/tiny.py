"""The built-in tiny models (``tiny`` = Wan, ``tiny-ltx``, ``tiny-cogvideox``): each family's real
diffusers pipelines at a few hundred kB, built from configs in code with no download, saved with
``save_pretrained`` and then loaded back through ``DiffusionPipeline.from_pretrained`` exactly like
a real model.

The weights are random (seeded), so they render texture, not pictures: they exist so that CI and
new users can run every stage of the real pipeline, for every family, on any CPU in about a second
per shot.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mvgen.errors import ConfigError
from mvgen.families import FAMILIES
from mvgen.files import cache_root

TINY_VERSION = 1


def tiny_root(family: str = "wan") -> Path:
    # The Wan build keeps its original folder name, so that clips cached by earlier versions stay valid.
    version = max(TINY_VERSION, FAMILIES[family].tiny_version)
    name = f"tiny-v{version}" if family == "wan" else f"tiny-{family}-v{version}"
    return cache_root() / "models" / name


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
            from mvgen.generate.local import quiet_libraries

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
