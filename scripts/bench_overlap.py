"""Generation and encoding side by side (overlap) against one after the other.

    python scripts/bench_overlap.py [--reps 3] [--shots 12] [--steps 12] [--no-pin]

Renders a shot list of N tiny-model shots (one bar each at 120 BPM, 832x480 output) from an empty
cache with ``--no-overlap`` and with the default overlap, alternating, each a fresh process. The
model gets one CPU thread (``OMP_NUM_THREADS=1``) and the encoder one (``output: {threads: 1}``);
the render process (the model, and the lossless clip writes of the generation) is pinned to the
first core and the assembly process (``mvgen.media.assembler``: its decoders, composition and
encoder) to the second. On a 2-core machine that stands for a GPU sampling while the CPU encodes,
each with its own hardware; ``--no-pin`` lets the OS share both cores between the two sides
instead (the assembly then also takes time from the model). From the manifests (``timings_s``):

* sequential: generate_s (sum of generation) and assemble_s (sum of encoding), and their sum;
* overlapped: generate_s + assemble_s (the encode's tail after the last shot), compared with
  max(generation, encoding) of the sequential runs (medians).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def write_inputs(folder: Path, shots: int, steps: int) -> Path:
    seconds = shots * 2.0 + 1.0
    sr = 22050
    t = np.arange(int(seconds * sr)) / sr
    click = (np.sin(2 * np.pi * 1000 * t) * np.exp(-((t % 0.5) * 40))).astype(np.float32) * 0.5
    sf.write(str(folder / "track.wav"), click, sr)
    body = "".join(f"  - {{prompt: 'shot {i}, colour {i * 30}', length: 1 bar}}\n" for i in range(shots))
    path = folder / "shots.yaml"
    path.write_text(
        "version: 1\nmodel: tiny\naudio: {path: track.wav, bpm: 120}\n"
        "output: {path: out.mp4, preset: medium, threads: 1}\n"
        f"generation: {{steps: {steps}}}\ntiming: {{fit: trim}}\nshots:\n{body}"
    )
    return path


def _parents(root: int) -> dict[int, int]:
    """The parent of every process started after ``root`` (its descendants have higher PIDs, barring
    a wrap-around), from /proc/PID/stat: reading only those keeps this poll cheap (~0.1 ms, against
    ~2 ms for every process), so the harness does not take CPU from what it measures."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) > root:
            with contextlib.suppress(OSError, ValueError, IndexError):
                out[int(name)] = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return out


def _pin_assembly(root: int, core: int, stop: threading.Event) -> None:
    """Keep the assembly process (``mvgen.media.assembler``) and everything under it - its threads,
    its ffmpeg decoders and encoder - on ``core`` until ``stop``."""
    while not stop.wait(0.02):
        parents = _parents(root)
        todo = [p for p, pp in parents.items() if pp == root and b"mvgen.media.assembler" in _cmdline(p)]
        while todo:
            pid = todo.pop()
            todo += [p for p, pp in parents.items() if pp == pid]
            for tid in Path(f"/proc/{pid}/task").glob("*"):
                with contextlib.suppress(OSError, ValueError):
                    if os.sched_getaffinity(int(tid.name)) != {core}:
                        os.sched_setaffinity(int(tid.name), {core})


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def run(shots: Path, cache: Path, overlap: bool, pin: bool) -> dict:
    env = {**os.environ, "MVGEN_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "mvgen", "render", str(shots), "-q"] + ([] if overlap else ["--no-overlap"])
    cores = sorted(os.sched_getaffinity(0))
    pinned = pin and len(cores) >= 2
    with subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=(lambda: os.sched_setaffinity(0, {cores[0]})) if pinned else None,
    ) as proc:  # fmt: skip
        stop = threading.Event()
        if pinned:
            threading.Thread(target=_pin_assembly, args=(proc.pid, cores[1], stop), daemon=True).start()
        _, err = proc.communicate()
        stop.set()
    if proc.returncode != 0:
        raise SystemExit(f"mvgen render failed ({proc.returncode}): {err.decode()[-2000:]}")
    m = json.loads((shots.parent / "out.json").read_text())
    assert m["generation"]["overlap"] == overlap
    return m["timings_s"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--shots", type=int, default=12)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="let the OS share the cores between the model and the assembly")  # fmt: skip
    args = ap.parse_args()
    seq, ovl = [], []
    with tempfile.TemporaryDirectory(prefix="mvgen-bench-overlap-") as tmp:
        folder = Path(tmp)
        shots = write_inputs(folder, args.shots, args.steps)
        subprocess.run([sys.executable, "-m", "mvgen", "models"], check=True, capture_output=True)
        for rep in range(args.reps):
            for overlap in (False, True):
                cache = folder / f"cache-{rep}-{overlap}"
                t = run(shots, cache, overlap, args.pin)
                (ovl if overlap else seq).append(t)
                print(f"  rep {rep + 1} {'overlap   ' if overlap else 'sequential'}: generate {t['generate_s']:.2f} s, "
                      f"assemble {t['assemble_s']:.2f} s", flush=True)  # fmt: skip
    gen = statistics.median(t["generate_s"] for t in seq)
    enc = statistics.median(t["assemble_s"] for t in seq)
    seq_total = statistics.median(t["generate_s"] + t["assemble_s"] for t in seq)
    ovl_total = statistics.median(t["generate_s"] + t["assemble_s"] for t in ovl)
    print(f"{args.shots} shots, {args.steps} steps, medians of {args.reps}:")
    print(f"  sequential: generation {gen:.2f} s + encoding {enc:.2f} s = {seq_total:.2f} s")
    ovl_gen = statistics.median(t["generate_s"] for t in ovl)
    tail = statistics.median(t["assemble_s"] for t in ovl)
    print(f"  overlapped: generation + encoding tail = {ovl_total:.2f} s "
          f"(generation {ovl_gen:.2f} s, tail {tail:.2f} s)")  # fmt: skip
    print(f"  overlapped / max(generation, encoding) = {ovl_total / max(gen, enc):.3f}; "
          f"overlapped / sequential = {ovl_total / seq_total:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
