"""Assembly on clips of known content: every output frame comes from the planned shot (cuts exact
to the frame), retiming spreads a clip over its slot, and a failed write never touches the old file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from mvgen.audio.grid import BeatGrid
from mvgen.audio.probe import probe_audio
from mvgen.config import parse_shotlist_text
from mvgen.config.presets import all_presets
from mvgen.errors import EncodeError
from mvgen.media.assemble import assemble
from mvgen.media.assembler import AssemblyProcess
from mvgen.media.clips import write_clip
from mvgen.planner import plan_video
from tests.conftest import drum_track

COLOURS = [(230, 30, 30), (30, 200, 40), (40, 60, 230), (240, 220, 30)]


def counting_clip(path: Path, colour, n: int, size=(64, 48)) -> Path:
    """A clip whose frame j is the colour with a bar growing over the left half: 0 px at j=0,
    w/2 at the last frame (to see retiming); the right half is always the plain colour."""
    w, h = size
    frames = np.zeros((n, h, w, 3), dtype=np.uint8)
    frames[:] = colour
    for j in range(n):
        frames[j, :, : int(round(j / (n - 1) * w / 2)), :] = 255 - np.array(colour, dtype=np.uint8)
    write_clip(path, frames, 8.0)
    return path


def decode_rgb(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.fixture
def setup(tmp_path):
    audio = probe_audio(drum_track(tmp_path / "a.wav", duration_s=6.0))
    beats = tuple(0.1 + 0.5 * i for i in range(12))
    grid = BeatGrid(120.0, audio.duration_s, beats, beats[::4], ())
    sl = parse_shotlist_text(
        "video: {width: 64, height: 48, fps: 24}\ntiming: {fit: loop}\nshots:\n"
        "  - {prompt: a, length: 3}\n  - {prompt: b, length: 2}\n  - {prompt: c, length: 4}\n  - {prompt: d, length: 1}\n",
        Path("t.yaml"),
    )
    tiny = all_presets()["tiny"].model_copy(update={"render_scale": 1.0})
    plan = plan_video(sl, grid, tiny)
    clips = [
        counting_clip(tmp_path / f"c{s.index}.mkv", COLOURS[s.source_index], s.num_frames) for s in plan.shots
    ]
    return plan, clips, audio, tmp_path


def test_every_frame_comes_from_its_planned_shot(setup):
    plan, clips, audio, tmp = setup
    out = tmp / "o.mp4"
    assemble(plan, clips, audio, out)
    frames = decode_rgb(out)
    assert len(frames) == plan.total_frames == 144
    for s in plan.shots:
        for k in range(s.start_frame, s.end_frame):
            # the right half of a frame is always the shot's own colour (the bar grows from the left)
            px = frames[k, 24, 60].astype(int)
            assert np.abs(px - COLOURS[s.source_index]).max() < 40, (s.id, k, px)


def test_retiming_spreads_the_clip_over_the_slot(setup):
    plan, clips, audio, tmp = setup
    out = tmp / "o.mp4"
    assemble(plan, clips, audio, out)
    frames = decode_rgb(out)
    s = plan.shots[2]  # 4 beats = 2 s = 48 output frames from a 17-frame clip
    widths = []
    for k in range(s.start_frame, s.end_frame):
        row = frames[k, 24, :, :].astype(int)
        widths.append(int(np.sum(np.abs(row - COLOURS[s.source_index]).max(axis=1) > 60)))
    assert widths[0] <= 2  # starts at the clip's first frame (no bar)
    assert widths[-1] >= 32 - 2  # ends at its last frame (bar over the left half)
    assert widths == sorted(widths)  # plays forward, never jumps back


def test_a_failed_write_leaves_the_previous_output_untouched(setup):
    plan, clips, audio, tmp = setup
    out = tmp / "o.mp4"
    out.write_bytes(b"previous render")
    clips[1].write_bytes(b"corrupt")  # the cached clip is damaged
    with pytest.raises(EncodeError):
        assemble(plan, clips, audio, out)
    assert out.read_bytes() == b"previous render"
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_output_is_never_visible_half_written(setup, monkeypatch):
    """The final name appears only by rename, after the mux and the verification."""
    plan, clips, audio, tmp = setup
    out = tmp / "o.mp4"
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, "replace", lambda a, b: (seen.append((Path(a).name, Path(b).name)), real_replace(a, b))
    )
    assemble(plan, clips, audio, out)
    assert seen and seen[-1][1] == "o.mp4" and seen[-1][0].startswith(".o.mp4.")


def test_output_gets_the_umask_mode_not_mkstemps_0600(setup):
    plan, clips, audio, tmp = setup
    out = tmp / "o.mp4"
    old = os.umask(0o022)
    try:
        assemble(plan, clips, audio, out)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _wait_for(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_assembly_process_encodes_slots_as_they_arrive_and_writes_the_same_video(setup):
    """The render's assembly runs in a child process, niced, in a session of its own: it waits for
    each slot, encodes what it has, and writes what the in-process assembly writes."""
    plan, clips, audio, tmp = setup
    assemble(plan, clips, audio, tmp / "in-process.mp4")
    proc = AssemblyProcess(plan, audio, tmp / "child.mp4", background=True)
    proc.publish(0, clips[0], plan.shots[0].num_frames)
    # it encodes slot 0, then waits for slot 1 (the song's first frames are out before the rest exist)
    assert _wait_for(lambda: proc.done >= plan.shots[0].end_frame - 1)
    time.sleep(0.3)
    assert proc.done <= plan.shots[1].start_frame
    assert _nice_of(proc.pid) == min(19, os.nice(0) + 10) and os.getsid(proc.pid) == proc.pid
    for i in sorted(range(1, len(clips)), reverse=True):  # out of order: it takes each when it reaches it
        proc.publish(i, clips[i], plan.shots[i].num_frames)
    info = proc.result()
    assert info["video_codec"] == "h264" and proc.done == plan.total_frames
    assert np.array_equal(decode_rgb(tmp / "child.mp4"), decode_rgb(tmp / "in-process.mp4"))
    assert _temp_files(tmp) == []


def _encoding_slot_0(plan, clips, audio, out: Path) -> AssemblyProcess:
    """An assembly process that has started encoding slot 0 (and waits for slot 1)."""
    proc = AssemblyProcess(plan, audio, out, background=True)
    proc.publish(0, clips[0], plan.shots[0].num_frames)
    assert _wait_for(lambda: proc.done > 0)
    return proc


def test_cancelling_the_assembly_process_leaves_the_previous_output(setup):
    plan, clips, audio, tmp = setup
    out = tmp / "o.mp4"
    out.write_bytes(b"previous render")
    proc = _encoding_slot_0(plan, clips, audio, out)
    assert any(n.startswith(".o.mp4.") for n in _temp_files(tmp))  # it is writing
    proc.cancel()
    assert proc.returncode is not None  # cancel waits for the child to end
    assert out.read_bytes() == b"previous render" and _temp_files(tmp) == []


def test_a_sigterm_to_the_assembly_process_stops_it_cleanly(setup):
    """An operator's kill (TERM) of the encoder alone: a one-line error in the render, no temp file."""
    import signal

    plan, clips, audio, tmp = setup
    out = tmp / "o.mp4"
    out.write_bytes(b"previous render")
    proc = _encoding_slot_0(plan, clips, audio, out)
    os.kill(proc.pid, signal.SIGTERM)
    with pytest.raises(EncodeError, match=r"assembly process was stopped \(SIGTERM\)") as e:
        proc.result()
    assert e.value.hint and "cached" in e.value.hint
    assert out.read_bytes() == b"previous render" and _temp_files(tmp) == []


def test_an_error_in_the_assembly_process_reaches_the_parent(setup):
    plan, clips, audio, tmp = setup
    out = tmp / "o.mp4"
    out.write_bytes(b"previous render")
    clips[2].write_bytes(b"corrupt")
    proc = AssemblyProcess(plan, audio, out, background=False)
    for i, clip in enumerate(clips):
        proc.publish(i, clip, plan.shots[i].num_frames)
    with pytest.raises(EncodeError, match=r"c2\.mkv"):
        proc.result()
    assert out.read_bytes() == b"previous render" and _temp_files(tmp) == []


PARENT = """
import sys, time
from pathlib import Path
import pickle
from mvgen.media.assembler import AssemblyProcess
plan, audio, out, clip, n = pickle.loads(Path(sys.argv[1]).read_bytes())
proc = AssemblyProcess(plan, audio, Path(out), background=True)
proc.publish(0, Path(clip), n)
while proc.done == 0:
    time.sleep(0.01)
print(proc.pid, flush=True)
time.sleep(600)
"""


def test_the_assembly_process_cleans_up_when_its_parent_is_killed(setup):
    """kill -9 of mvgen mid-encode (the OOM killer, a cron timeout): the child sees its input close,
    stops, and removes its temp file; nothing is left running or half-written."""
    import pickle

    plan, clips, audio, tmp = setup
    out = tmp / "o.mp4"
    args = tmp / "args.pickle"
    args.write_bytes(pickle.dumps((plan, audio, str(out), str(clips[0]), plan.shots[0].num_frames)))
    with subprocess.Popen(
        [sys.executable, "-c", PARENT, str(args)], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert any(n.startswith(".o.mp4.") for n in _temp_files(tmp))
        parent.kill()
    assert _wait_for(
        lambda: (
            not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
        ),
        30,
    )
    assert not out.exists() and _temp_files(tmp) == []


def test_an_assembly_process_killed_outright_is_reported_not_waited_for(setup):
    import signal

    plan, clips, audio, tmp = setup
    proc = _encoding_slot_0(plan, clips, audio, tmp / "o.mp4")
    os.kill(proc.pid, signal.SIGKILL)
    with pytest.raises(EncodeError, match=r"assembly process ended unexpectedly \(exit code -9\)"):
        proc.result()
    assert not (tmp / "o.mp4").exists()


def test_the_assembly_process_runs_the_same_mvgen_as_its_parent(tmp_path):
    """A checkout put first on sys.path by its caller (a script, a second copy beside an installed
    mvgen) is the code the child runs too, not whichever mvgen is installed."""
    import shutil

    copy = tmp_path / "alt"
    shutil.copytree(Path(__file__).resolve().parents[2] / "src" / "mvgen", copy / "mvgen")
    child = copy / "mvgen" / "media" / "assembler.py"
    child.write_text(
        child.read_text().replace(
            "    channel = os.fdopen(",
            "    print('assembly from the copy', file=sys.stderr)\n    channel = os.fdopen(",
        )
    )
    parent = (
        "import logging, sys, types; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout); "
        "from mvgen.media.assembler import AssemblyProcess; "
        "proc = AssemblyProcess(types.SimpleNamespace(total_frames=1), None, Path(sys.argv[2]), background=False)\n"
        "try: proc.result()\nexcept Exception as exc: print('failed as expected:', type(exc).__name__)"
    )
    r = subprocess.run(
        [sys.executable, "-c", parent, str(copy), str(tmp_path / "o.mp4")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # a plan without shots: the error comes back from the child (not "ended unexpectedly")
    assert "failed as expected: AttributeError" in r.stdout, r.stdout + r.stderr
    assert "assembly process: assembly from the copy" in r.stdout, r.stdout
