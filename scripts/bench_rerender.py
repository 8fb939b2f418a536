"""The whole `mvgen render` of an all-cached video against the floor: ffmpeg alone encoding the same frames.

    python scripts/bench_rerender.py [--seconds 60 240] [--size 1280x720] [--reps 3]
                                     [--modes nearest flow blend] [--native-fps 16] [--render-scale 0.5]

What a user runs after changing only the edit, the retiming or the encoder (every clip cached):
`mvgen render shots.yaml`, from the interpreter's start to its exit -- imports, shot list, beat grid,
plan, cache look-ups, the assembly (decode, retime, compose, encode, mux), verification, manifest,
report. Each run is a fresh process; the output and its report are removed first so it re-encodes.

Two floors, for each retime mode, from the very frames that mode composes (written once beforehand),
encoded by ffmpeg alone with the render's own encoder arguments (x264 preset, crf, threads, BT.709
filter, the song as AAC, faststart):
* from raw frames (a file of rgb24 frames): the encode and nothing else, the strictest floor;
* from a lossless file (UT Video, as the cache stores clips): a transcode, which also decodes.

The clips come from the built-in tiny model, generated once into the cache (not timed): 30 one-bar
shots at 120 BPM (a minute; a longer song loops them, ``fit: loop``), a one-beat crossfade on every
fourth cut, colours and pans named in the prompts. ``--native-fps 16`` makes them 16 fps clips, as
Wan's (the tiny's weights under a preset that says 16 fps: the model does not know the rate);
``--render-scale`` is the clips' size against the output (0.5: 640x352 for 1280x720, a real
model's upscale). Lengths after the first measure mvgen alone, once, for memory.

Per repetition each mode runs, then its floors; medians and ratios are printed, with peak RSS per
process of the render (each one's VmHWM, read every 0.2 s): the mvgen process, the assembly process,
the largest clip decoder, the encoder (x264 itself: the floor's ffmpeg needs as much).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

COLOURS = ["red", "blue", "green", "orange", "purple", "yellow", "cyan", "white"]
MOTIONS = ["panning left", "panning right", "drifting up", "drifting down", "still"]


def _register_preset(native_fps: float, render_scale: float) -> None:
    """The tiny's weights under a preset named ``bench-tiny`` at the given native rate and scale."""
    from mvgen.config import presets

    base = presets.all_presets()["tiny"]
    bench = base.model_copy(update={"name": "bench-tiny", "fps": native_fps, "render_scale": render_scale})
    table = presets.all_presets()
    table["bench-tiny"] = bench


SHOTS = 30  # one bar each: a minute at 120 BPM; a longer song loops the list (the same clips)


def write_project(folder: Path, seconds: float, width: int, height: int, mode: str) -> Path:
    """A ``seconds`` song (a 120 BPM pulse over a chord) and a shot list for ``mode``; returns the list."""
    import soundfile as sf

    audio = folder / f"song{seconds:g}.wav"
    if not audio.exists():
        sr = 44100
        t = np.arange(int(seconds * sr)) / sr
        chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * 0.05
        kick = np.exp(-((t % 0.5) / 0.03)) * np.sin(2 * np.pi * 60 * t) * 0.5
        sf.write(str(audio), np.stack([chord + kick] * 2, axis=1).astype(np.float32), sr)
    body = "".join(
        f"  - {{prompt: 'a {COLOURS[i % len(COLOURS)]} field {MOTIONS[i % len(MOTIONS)]}', length: 1 bar"
        f"{', transition: {crossfade: 1}' if i % 4 == 3 else ''}}}\n"
        for i in range(SHOTS)
    )
    shots = folder / f"{mode}.yaml"
    shots.write_text(
        f"version: 1\nmodel: bench-tiny\naudio: {{path: {audio.name}, bpm: 120}}\n"
        f"output: {{path: {mode}.mp4, crf: 18, preset: medium}}\n"
        f"video: {{width: {width}, height: {height}, fps: 24, retime: {mode}}}\n"
        f"timing: {{fit: loop}}\nshots:\n{body}"
    )
    return shots


def worker(args: list[str]) -> int:
    """In this process: ``render SHOTS`` (the CLI, exactly as a user runs it) or ``dump SHOTS RAW``."""
    native_fps, render_scale, what, shots = float(args[0]), float(args[1]), args[2], Path(args[3])
    _register_preset(native_fps, render_scale)
    if what == "render":
        from mvgen.cli import run

        return run(["render", str(shots)])
    # dump: the frames this render composes, losslessly and raw, for the floors
    from mvgen import api
    from mvgen.audio.probe import probe_audio
    from mvgen.cache import ShotCache
    from mvgen.ffmpeg import finish_ffmpeg_writer, open_ffmpeg_writer
    from mvgen.media import assemble as asm
    from mvgen.options import RenderOptions
    from mvgen.prepare import prepare_options

    lossless, raw, out, spec = (Path(a) for a in args[4:8])
    job = prepare_options(shots, RenderOptions())
    plan = api.plan_video(job)
    manifest = json.loads(shots.with_suffix(".json").read_text())
    cache = ShotCache()
    clips = [cache.get(s["cache_key"]).clip for s in manifest["shots"]]
    timeline = asm._Timeline(plan, asm.SlotClips.of(clips), lambda k: None)
    proc = open_ffmpeg_writer(
        ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{plan.width}x{plan.height}", "-r", f"{plan.fps:.10g}",
         "-i", "-", "-c:v", "utvideo", "-pix_fmt", "gbrp", "-f", "matroska", str(lossless)]
    )  # fmt: skip
    with open(raw, "wb") as f:
        for k in range(plan.total_frames):
            frame = np.ascontiguousarray(timeline.frame(k / plan.fps))
            proc.stdin.write(frame.data)
            f.write(frame.data)
    timeline.close()
    finish_ffmpeg_writer(proc, what="dumping frames")
    enc = asm._encoder_args(plan, probe_audio(Path(manifest["audio"]["path"])), out, plan.x264_preset,
                            plan.encode_threads or asm.encoder_threads())  # fmt: skip
    # the render's own encoder arguments, the frames from a file instead of the pipe
    from_raw = list(enc)
    from_raw[from_raw.index("-")] = str(raw)
    from_lossless = enc[enc.index("-i") :]
    from_lossless[1] = str(lossless)
    spec.write_text(json.dumps({"lossless": from_lossless, "raw": from_raw}))
    return 0


def _kind(pid: int, root: int) -> str | None:
    """What a process of the render's tree is: main, assembly, encoder or decoder."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    text = b" ".join(cmd)
    if pid == root:
        return "main"
    if b"mvgen.media.assembler" in text:
        return "assembly"
    if b"ffmpeg" in text:
        return "encoder" if b"libx264" in text else "decoder"
    return "other"


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def _child(cmd: list[str], env: dict[str, str]) -> tuple[float, str, dict[str, float]]:
    """(seconds, stdout, peak RSS in MiB per kind of process in its tree) of one fresh process.
    Peaks are each process's own high-water mark (VmHWM), read every 0.2 s while it lives."""
    import threading

    peaks: dict[str, float] = {}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                for pid in _tree(proc.pid):
                    kind = _kind(pid, proc.pid)
                    try:
                        status = Path(f"/proc/{pid}/status").read_text()
                        hwm = (
                            int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1])
                            / 1024
                        )
                    except (OSError, StopIteration):
                        continue
                    if kind:
                        peaks[kind] = max(peaks.get(kind, 0.0), hwm)
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd[:4])}... failed ({proc.returncode}):\n{err.read().decode()[-3000:]}")
        return seconds, out.read().decode(), peaks


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--seconds",
        type=float,
        nargs="+",
        default=[60.0, 240.0],
        help="lengths; the first is compared with the floors, the others measure mvgen alone (memory)",
    )
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--modes", nargs="+", default=["nearest", "flow"], choices=["nearest", "flow", "blend"])
    ap.add_argument("--native-fps", type=float, default=16.0)
    ap.add_argument("--render-scale", type=float, default=0.5)
    ap.add_argument(
        "--keep",
        type=Path,
        help="work in this folder (new, empty or an earlier --keep; kept) "
        "instead of a temporary one: a second run reuses its clips",
    )
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    from mvgen.ffmpeg import ffmpeg_exe
    from mvgen.media.assemble import encoder_threads

    with tempfile.TemporaryDirectory(prefix="mvgen-bench-rerender-") as tmp:
        folder = args.keep or Path(tmp)
        # it writes and removes files by fixed names there: only in a folder of its own
        mark = folder / ".bench-rerender"
        if args.keep and folder.exists() and any(folder.iterdir()) and not mark.exists():
            sys.exit(f"{folder} is not empty and not a bench_rerender folder: give a new or empty one")
        folder.mkdir(parents=True, exist_ok=True)
        mark.touch()
        env = {**os.environ, "MVGEN_CACHE_DIR": str(folder / "cache"), "PYTHONPATH": str(REPO / "src")}
        me = [sys.executable, __file__, "--worker", str(args.native_fps), str(args.render_scale)]
        print(f"all-cached `mvgen render` at {width}x{height}@24 from {args.native_fps:g} fps clips "
              f"({args.render_scale:g} of the size), x264 medium crf 18, {encoder_threads()} threads", flush=True)  # fmt: skip
        for n, seconds in enumerate(args.seconds):
            shots = {m: write_project(folder, seconds, width, height, m) for m in args.modes}
            # fills the cache (not timed); past the list's minute a longer song loops the same clips
            if n == 0 or min(seconds, 2.0 * SHOTS) > min(args.seconds[0], 2.0 * SHOTS):
                t0 = time.perf_counter()
                _child([*me, "render", str(shots[args.modes[0]])], env)
                print(
                    f"clips for {seconds:g} s ready in {time.perf_counter() - t0:.0f} s (not timed)",
                    flush=True,
                )
            reps = args.reps if n == 0 else 1
            floors: dict[str, dict[str, list[str]]] = {}
            if n == 0:  # the floors: the first length only (a minute of raw 1280x720 is 4 GB)
                for m in args.modes:
                    _child([*me, "render", str(shots[m])], env)  # each mode's manifest names its clips
                    spec = folder / f"{m}.floor.json"
                    _child([*me, "dump", str(shots[m]), str(folder / f"{m}.frames.mkv"), str(folder / f"{m}.frames.raw"),
                            str(folder / "floor.mp4"), str(spec)], env)  # fmt: skip
                    floors[m] = json.loads(spec.read_text())
            runs: dict[str, list[tuple[float, dict[str, float], float]]] = {m: [] for m in args.modes}
            floor_runs: dict[tuple[str, str], list[float]] = {}
            for _ in range(reps):
                for m in args.modes:
                    for suffix in (".mp4", ".json", ".html", ".contact.png", ".beats.png"):
                        (folder / f"{m}{suffix}").unlink(missing_ok=True)
                    s, _, peaks = _child([*me, "render", str(shots[m])], env)
                    timings = json.loads((folder / f"{m}.json").read_text())["timings_s"]
                    runs[m].append((s, peaks, timings["assemble_s"]))
                    for kind, cmd in floors.get(m, {}).items():
                        s, _, _ = _child([ffmpeg_exe(), "-y", "-v", "error", *cmd], env)
                        floor_runs.setdefault((m, kind), []).append(s)
            print(f"{seconds:g} s ({reps} run{'s' if reps > 1 else ''} each):")
            for m in args.modes:
                mv = statistics.median(r[0] for r in runs[m])
                line = f"  {m:8s} mvgen render median {mv:6.2f} s {[round(r[0], 2) for r in runs[m]]}"
                for kind, label in (
                    ("raw", "ffmpeg alone from raw frames"),
                    ("lossless", "from a lossless file"),
                ):
                    if (m, kind) in floor_runs:
                        fl = statistics.median(floor_runs[(m, kind)])
                        line += f"; {label} {fl:6.2f} s {[round(x, 2) for x in floor_runs[(m, kind)]]}, ratio {mv / fl:.3f}"
                print(line)
                enc = statistics.median(r[2] for r in runs[m])
                print(f"           of which the encode phase (manifest's assemble_s) {enc:.2f} s, the rest "
                      f"(start-up, plan, cache look-ups, verification, manifest, report) {mv - enc:.2f} s")  # fmt: skip
                kinds = ("main", "assembly", "decoder", "encoder")
                peak = {k: max(r[1].get(k, 0.0) for r in runs[m]) for k in kinds}
                print(
                    "           peak RSS (MiB): " + ", ".join(f"{k} {peak[k]:.0f}" for k in kinds), flush=True
                )
            for m in args.modes:
                (folder / f"{m}.frames.raw").unlink(missing_ok=True)
                (folder / f"{m}.frames.mkv").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
