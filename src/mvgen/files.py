"""Where mvgen keeps its work files, and the atomic-write primitives every stage uses. Stdlib only
(plus platformdirs): safe to import from any layer.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """``MVGEN_CACHE_DIR``, else the platform's user cache dir (``~/.cache/mvgen`` on Linux)."""
    env = os.environ.get("MVGEN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mvgen", appauthor=False))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(final: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it is renamed over ``final``.

    The rename is atomic on POSIX, so readers see the old file or the complete new one, never a
    half-written one; on any error the temporary file is removed and ``final`` is untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600; the finished file gets the mode any new file would (umask).
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(final: Path, text: str) -> None:
    with atomic_path(final) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, from Python or in the text of a failed tool (ffmpeg prints strerror)."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


def sweep_stale_temps(folder: Path, prefix: str) -> int:
    """Remove temp files and folders named ``.{prefix}.*.tmp*`` / ``.{prefix}.*.video.mp4`` left in
    ``folder`` by a killed process. Only call it while holding the lock of whatever writes them."""
    import shutil

    removed = 0
    if not folder.is_dir():
        return 0
    for p in folder.glob(f".{prefix}.*"):
        if ".tmp" in p.name or p.name.endswith(".video.mp4"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed += 1
    return removed
