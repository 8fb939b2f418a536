"""How the ``mvgen`` command ends its process (see ``exit_now``)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any


def exit_now(code: int, *streams: Any) -> None:
    """End the process with ``code``. Once torch, diffusers and transformers are loaded, Python's
    own teardown (every module and object finalised) takes about a second after the work is done, on
    every run (``scripts/bench_exit.py``: docs/benchmarks.md); what of it matters is done first -
    other threads finished, the atexit handlers (Ray's shutdown, temporary folders' finalizers),
    logging, ``streams`` (a log file) and the standard streams flushed - and then the process exits
    without the rest."""
    if "torch" not in sys.modules:  # nothing heavy loaded: the usual way
        sys.exit(code)
    import atexit
    import logging
    import threading

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (*streams, sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # closed, or a closed pipe
            stream.flush()
    os._exit(code)
