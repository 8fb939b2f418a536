"""Inter-process locks, so overlapping cron runs never render the same shot twice or write the same
file. Lock files live under the cache dir (``locks/``), never beside a user's outputs.

filelock's locks are advisory OS locks (flock): a killed process releases them at once, so a crash
never leaves a stale lock that needs cleaning up by hand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from mvgen.errors import BusyError
from mvgen.files import cache_root


def _lock_file(kind: str, name: str) -> Path:
    folder = cache_root() / "locks" / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.lock"


def output_lock_path(out: Path) -> Path:
    digest = hashlib.sha256(str(out.expanduser().resolve()).encode()).hexdigest()[:24]
    return _lock_file("outputs", digest)


@contextmanager
def job_lock(out: Path, *, wait: bool, on_wait=None) -> Iterator[None]:
    """Hold the lock of one output file for the whole job. Without ``wait`` a held lock raises
    ``BusyError`` (exit 75); with it, ``on_wait()`` is called once and the call blocks."""
    lock = FileLock(str(output_lock_path(out)))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise BusyError(
                f"{out}: another mvgen process is rendering this output",
                hint="it keeps its finished shots in the shared cache; re-run later, or pass --wait",
            ) from None
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def shot_lock(key: str) -> Iterator[None]:
    """Held while one process generates one cache entry; others wait, then find it cached."""
    lock = FileLock(str(_lock_file("shots", key)))
    with lock:
        yield
