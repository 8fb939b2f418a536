"""mvgen never overwrites a file it did not write.

Everything a render leaves beside its video carries a mark mvgen recognises: the manifests their
``mvgen_version`` key, the videos a ``comment`` tag (``mvgen X.Y.Z``), the report page a generator
meta tag, the PNGs a ``Software`` text chunk, the OTIO timeline its metadata, the shots' media
folder a marker file. A file written by an older mvgen without its mark is recognised when the
manifest beside it lists it. Any other file at one of those paths is the user's: the job stops
before any model loads, naming the file and the way round it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from mvgen import __version__
from mvgen.errors import ConfigError

MARK = f"mvgen {__version__}"  # what mvgen writes into its files' tags; recognised by its first word
FOLDER_MARK = ".mvgen"  # the file inside a folder mvgen made (and replaces whole on the next export)
HTML_MARK = '<meta name="generator" content="'
_OLD_MEDIA = re.compile(r"^\d{3}-.+\.mp4$")  # the shots an older mvgen exported for OTIO


def marked(path: Path) -> bool:
    """Whether the file (or folder) at ``path`` carries mvgen's mark."""
    try:
        if path.is_dir():
            names = [p.name for p in path.iterdir()]
            return FOLDER_MARK in names or all(_OLD_MEDIA.match(n) for n in names)
        suffix = path.suffix.lower()
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(data, dict) and "mvgen_version" in data
        if suffix == ".otio":
            data = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(data, dict) and "mvgen" in (data.get("metadata") or {})
        if suffix == ".html":
            with open(path, encoding="utf-8", errors="replace") as f:
                return (HTML_MARK + "mvgen") in f.read(4096)
        if suffix == ".png":
            from PIL import Image

            with Image.open(path) as img:
                return str(img.info.get("Software", "")).startswith("mvgen")
        if suffix == ".mp4":
            from mvgen.ffmpeg import probe_streams

            return str(probe_streams(path).get("comment", "")).startswith("mvgen")
    except (OSError, ValueError):
        return False
    return False


def _listed_by(manifest: Path) -> set[Path]:
    """The files a manifest of mvgen's names as its outputs (video, report, OTIO timeline)."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(data, dict) or "mvgen_version" not in data:
        return set()
    named = [(data.get("video") or {}).get("path"), data.get("otio"), *(data.get("report") or {}).values()]
    if data.get("otio"):
        named.append(str(Path(data["otio"]).with_name(Path(data["otio"]).stem + "_media")))
    return {Path(p).resolve() for p in named if isinstance(p, str)}


def foreign(paths: Iterable[Path], manifest: Path) -> list[Path]:
    """The paths among ``paths`` that hold something mvgen did not write (``manifest``: the job's
    manifest, which lists the files an older mvgen wrote without a mark)."""
    listed: set[Path] | None = None
    found = []
    for p in paths:
        if not p.exists() or marked(p):
            continue
        if listed is None:
            listed = _listed_by(manifest)
        if p.resolve() not in listed:
            found.append(p)
    return found


def check_not_foreign(roles: dict[Path, str], manifest: Path, *, job: str) -> None:
    """``ConfigError`` (exit 2) naming every file mvgen would overwrite but did not write.
    ``roles``: each path the job writes -> what mvgen writes there ("its manifest"); ``job``: the
    job, as the message names it ("rendering shots.yaml to clip.mp4")."""
    found = foreign(roles, manifest)
    if not found:
        return
    lines = [f"{p}: not written by mvgen, and {job} would replace it with {roles[p]}" for p in found]
    raise ConfigError(
        lines[0],
        more=tuple(lines[1:]),
        hint="give the video another name with --out NAME.mp4 (or `output:` in the shot list), or move "
        + ("these files" if len(found) > 1 else "it")
        + " away: mvgen never replaces a file it did not write",
    )
