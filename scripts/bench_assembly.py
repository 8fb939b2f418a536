"""Assembly against a bare ffmpeg encode of the same frames, and its memory at two lengths.

    python scripts/bench_assembly.py [--minutes 1 4] [--reps 3] [--size 1280x720] [--preset medium]

Writes synthetic lossless clips at the output size and the model's native 16 fps (a gradient with a
drifting texture, so x264 has real work; four distinct clips used in turn), plans one-bar shots at
120 BPM with a one-beat crossfade on every fourth cut, and measures, each run in a fresh process:

* **mvgen**: the real assembly (`mvgen.media.assemble.assemble`: clips decoded forward by ffmpeg,
  retimed 16 -> 24 fps, blended, piped into one ffmpeg that encodes H.264 and muxes the AAC audio);
* **bare ffmpeg**: the very frames mvgen composes, written once to a raw file beforehand, encoded
  by ffmpeg alone from that file with the same arguments (same x264 preset, crf, threads, filter,
  audio) -- the cost of the encode with nothing else around it.

Runs alternate (mvgen, ffmpeg, mvgen, ...); medians and their ratio are printed. Peak RSS is the
process's own high-water mark (``VmHWM``: Python + numpy + every frame buffer it holds), and
separately the largest child process's ``ru_maxrss`` (the x264 encoder; the clip decoders are
smaller). The raw file of the
first length only is kept (1 minute of 1280x720 is 4 GB); longer lengths measure mvgen alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def make_inputs(folder: Path, minutes: float, width: int, height: int, preset: str) -> Path:
    """Audio, four clips and a plan for ``minutes`` of video; returns the spec file for the workers."""
    from mvgen.audio.grid import BeatGrid
    from mvgen.config import parse_shotlist_text
    from mvgen.config.presets import all_presets
    from mvgen.media.clips import write_clip
    from mvgen.planner import plan_video

    duration = minutes * 60.0
    audio = folder / f"a{minutes:g}.wav"
    t = np.arange(int(duration * 44100)) / 44100
    sf.write(str(audio), np.stack([0.1 * np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32), 44100)
    beats = tuple(np.arange(0.0, duration, 0.5))
    grid = BeatGrid(120.0, duration, beats, beats[::4], ())
    n_shots = int(duration // 2)
    body = "".join(
        f"  - {{prompt: shot {i}, length: 1 bar{', transition: {crossfade: 1}' if i % 4 == 3 else ''}}}\n"
        for i in range(n_shots)
    )
    shots = parse_shotlist_text(
        f"video: {{width: {width}, height: {height}, fps: 24}}\noutput: {{preset: {preset}}}\n"
        f"timing: {{fit: trim}}\nshots:\n{body}",
        Path("b.yaml"),
    )
    wan = all_presets()["wan2.1-t2v-1.3b"]  # native 16 fps, 4k+1 frames
    plan = plan_video(shots, grid, wan.model_copy(update={"width": width, "height": height}))
    clips = []
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 40, (height + 64, width + 64), dtype=np.uint8)
    texture = ((texture[:-1, :-1].astype(np.uint16) + texture[1:, 1:]) // 2).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    n_src = max(s.num_frames for s in plan.shots)
    for c in range(4):
        path = folder / f"clip{c}-{n_src}.mkv"
        if not path.exists():
            frames = np.empty((n_src, height, width, 3), np.uint8)
            for j in range(n_src):
                base = (xx * (c + 1) + yy * 2 + 6 * j) % 200
                tex = texture[j % 32 : j % 32 + height, 2 * j % 32 : 2 * j % 32 + width]
                for ch in range(3):
                    frames[j, :, :, ch] = (base * (0.4 + 0.2 * ch) + tex + 30 * c).clip(0, 255)
            write_clip(path, frames, plan.native_fps)
        clips.append(str(path))
    spec = folder / f"spec{minutes:g}.json"
    spec.write_text(json.dumps({
        "plan": plan.to_json(), "audio": str(audio), "n_src": n_src,
        "clips": [clips[i % 4] for i in range(len(plan.shots))],
    }))  # fmt: skip
    return spec


def worker(mode: str, spec_path: str, out: str, raw: str) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    import resource

    from mvgen.audio.probe import probe_audio
    from mvgen.media import assemble as asm
    from mvgen.timeline import RenderPlan

    spec = json.loads(Path(spec_path).read_text())
    plan = RenderPlan.from_json(spec["plan"])
    audio = probe_audio(Path(spec["audio"]))
    clips = [Path(c) for c in spec["clips"]]
    counts = [spec["n_src"]] * len(clips)
    t0 = time.perf_counter()
    if mode == "mvgen":
        asm.assemble(plan, asm.SlotClips.of(clips, counts), audio, Path(out))
    elif mode == "dump":  # mvgen's composed frames to a raw file, for the bare encode
        timeline = asm._Timeline(plan, asm.SlotClips.of(clips, counts), lambda k: None)
        with open(raw, "wb") as f:
            for k in range(plan.total_frames):
                f.write(np.ascontiguousarray(timeline.frame(k / plan.fps)).data)
        timeline.close()
    else:  # bare ffmpeg: the same arguments, frames from the raw file instead of the pipe
        from mvgen.ffmpeg import run_ffmpeg

        args = asm._encoder_args(plan, audio, Path(out), plan.x264_preset, asm.encoder_threads())
        args[args.index("-")] = raw
        run_ffmpeg(["-y", *args], what="bare encode")
    seconds = time.perf_counter() - t0
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would count the bench's own memory at
    # the moment it forked this worker.
    status = Path("/proc/self/status").read_text()
    me = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1]) / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "seconds": seconds, "rss_mib": me, "child_rss_mib": kids,
                      "frames": plan.total_frames}))  # fmt: skip


def measure(mode: str, spec: Path, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(spec), str(folder / f"{mode}.mp4"), str(folder / "frames.raw")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:6])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 4.0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--preset", default="medium")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    from mvgen.media.assemble import encoder_threads

    print(
        f"assembly of {width}x{height}@24 (clips at 16 fps), x264 {args.preset} crf 18, {encoder_threads()} threads"
    )
    with tempfile.TemporaryDirectory(prefix="mvgen-bench-assembly-") as tmp:
        folder = Path(tmp)
        for n, minutes in enumerate(args.minutes):
            spec = make_inputs(folder, minutes, width, height, args.preset)
            runs: dict[str, list[dict]] = {"mvgen": [], "ffmpeg": []}
            if n == 0:
                measure("dump", spec, folder)
            for _ in range(args.reps if n == 0 else 1):
                runs["mvgen"].append(measure("mvgen", spec, folder))
                if n == 0:
                    runs["ffmpeg"].append(measure("ffmpeg", spec, folder))
            (folder / "frames.raw").unlink(missing_ok=True)
            frames = runs["mvgen"][0]["frames"]
            mv = statistics.median(r["seconds"] for r in runs["mvgen"])
            line = f"{minutes:g} min ({frames} frames): mvgen median {mv:.2f} s " + str(
                [round(r["seconds"], 2) for r in runs["mvgen"]]
            )
            if runs["ffmpeg"]:
                ff = statistics.median(r["seconds"] for r in runs["ffmpeg"])
                line += f", bare ffmpeg median {ff:.2f} s {[round(r['seconds'], 2) for r in runs['ffmpeg']]}"
                line += f", ratio {mv / ff:.3f}"
            print(line)
            rss = max(r["rss_mib"] for r in runs["mvgen"])
            kid = max(r["child_rss_mib"] for r in runs["mvgen"])
            print(f"   peak RSS: mvgen process {rss:.0f} MiB, its largest child (encoder) {kid:.0f} MiB"
                  + (f"; bare ffmpeg {max(r['child_rss_mib'] for r in runs['ffmpeg']):.0f} MiB" if runs["ffmpeg"] else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
