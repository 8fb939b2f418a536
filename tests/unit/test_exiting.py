"""``mvgen`` ends its process without the interpreter's teardown (mvgen/exiting.py): what the
teardown would have done that matters must still happen."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import atexit, logging, sys, threading, time
import torch  # what makes mvgen skip the teardown
from mvgen.exiting import exit_now

log = open(sys.argv[1] + ".log", "w")  # buffered: only a flush writes it
log.write("the log's last line\\n")
atexit.register(lambda: open(sys.argv[1] + ".atexit", "w").write("ran"))
logging.basicConfig(filename=sys.argv[1] + ".logging", level=logging.INFO)
logging.info("a logged line")
threading.Thread(target=lambda: (time.sleep(0.3), open(sys.argv[1] + ".thread", "w").write("done"))).start()
sys.stdout.write("x" * 200_000)  # more than a pipe holds: written out before the exit
exit_now(3, log)
"""


def test_exit_now_keeps_the_code_output_handlers_threads_and_logs(tmp_path):
    base = tmp_path / "run"
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(base)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "x" * 200_000 and r.stderr == ""
    assert (tmp_path / "run.atexit").read_text() == "ran"
    assert (tmp_path / "run.thread").read_text() == "done"  # a non-daemon thread finished first
    assert (tmp_path / "run.log").read_text() == "the log's last line\n"
    assert "a logged line" in (tmp_path / "run.logging").read_text()
