"""Model folders on disk: their content fingerprint (in cache keys), and the libraries' chatter
silenced while they load. Below the backends: tiny.py and local.py both use these."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

_FULL_HASH_LIMIT = 64 * 1024 * 1024


def folder_fingerprint(folder: Path) -> str:
    """A content hash of a model folder: full bytes for small folders, (name, size, mtime) for large
    ones so that a 30 GB checkpoint is not re-read on every render."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    total = sum(p.stat().st_size for p in files)
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(folder)).encode())
        if total <= _FULL_HASH_LIMIT:
            h.update(p.read_bytes())
        else:
            st = p.stat()
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def quiet_libraries() -> None:
    """mvgen draws the one progress display: silence diffusers' and transformers' own bars and
    info chatter (``--debug`` keeps them)."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        return
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
