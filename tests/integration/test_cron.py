"""Unattended use, through the real CLI in subprocesses: concurrent runs, SIGKILL at random points,
SIGTERM, a full disk, batches and logs."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from mvgen.ffmpeg import run_ffmpeg
from mvgen.ownership import MARK
from tests.conftest import drum_track, write

JOB = """model: tiny
audio: {audio}
output: {out}
video: {{width: 64, height: 64, fps: 12}}
generation: {{steps: 2, seed: {seed}}}
timing: {{fit: trim}}
shots:
{shots}"""


def job(
    folder: Path, name: str, seed: int, n: int = 6, audio: str = "t.wav", prompts: list[str] | None = None
) -> Path:
    prompts = prompts or [f"{name} shot {i}" for i in range(n)]
    shots = "".join(f"  - {{id: s{i}, prompt: '{p}', length: 2}}\n" for i, p in enumerate(prompts))
    return write(folder / f"{name}.yaml", JOB.format(audio=audio, out=f"{name}.mp4", seed=seed, shots=shots))


@pytest.fixture
def jobs(tmp_path):
    d = tmp_path / "jobs"
    d.mkdir()
    drum_track(d / "t.wav", duration_s=6.0)
    return d


def env_for(cache: Path, threads: int | None = None) -> dict:
    env = {**os.environ, "MVGEN_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    return env if threads is None else {**env, "OMP_NUM_THREADS": str(threads)}


def mvgen_proc(args, cache: Path, threads: int | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mvgen", *map(str, args)],
        env=env_for(cache, threads), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )  # fmt: skip


def run(args, cache: Path, timeout: float = 300, threads: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mvgen", *map(str, args)], env=env_for(cache, threads), capture_output=True,
        text=True, timeout=timeout,
    )  # fmt: skip


def fresh_cache(path: Path, tiny_models: Path, analysed: Path | None = None) -> Path:
    """An empty cache but for the tiny model and, given ``analysed``, the drum track's beat analysis
    and the curves its report's beat plot draws."""
    path.mkdir(parents=True)
    (path / "models").symlink_to(tiny_models)
    if analysed is not None:
        for part in ("beats", "plots"):
            shutil.copytree(analysed / part, path / part)
    return path


@pytest.fixture(scope="module")
def drum_beats(tmp_path_factory) -> Path:
    """A cache holding the beat analysis of the jobs' drum track (``jobs``) and its beat plot's
    curves, made once, in this process. Most tests here start from a cache that has them, as a
    studio's cache does after a track's first render: what they exercise (locks, kills, batches, a
    full disk) comes after the analysis, and a new process analysing afresh spends ~4 s importing
    librosa and compiling its numba kernels (and ~3 s more for the report's plot). The first test
    (two renders of one job started together) still analyses in both processes at once."""
    from mvgen.audio.beats import analyze
    from mvgen.audio.probe import probe_audio
    from mvgen.files import sha256_file
    from mvgen.media.plot import curves

    root = tmp_path_factory.mktemp("drum-beats")
    track = drum_track(root / "t.wav", duration_s=6.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MVGEN_CACHE_DIR", str(root / "cache"))
        analyze(probe_audio(track))
        curves(track, sha256_file(track))
    return root / "cache"


def frames_in(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def finished_shots(cache: Path) -> int:
    """Cache entries in place. A killed writer's temp folder (``.KEY.*.tmp``) may already hold its
    meta.json - killed between writing it and the rename - and is not a finished shot."""
    return len(list((cache / "shots").glob("*/[!.]*/meta.json")))


def test_two_renders_of_one_job_started_together(jobs, tmp_path, tiny_models):
    cache = fresh_cache(tmp_path / "cache", tiny_models)
    j = job(jobs, "a", seed=1)
    procs = [mvgen_proc(["render", j, "--json"], cache) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0], [0, 75]), outs
    generated = sum(json.loads(o)[0]["generated"] for o, _ in outs if o.strip())
    assert generated == 6  # exactly one process generated each shot
    if codes == [0, 75]:
        busy_err = next(e for (o, e), p in zip(outs, procs, strict=True) if p.returncode == 75)
        assert "another mvgen process is rendering this output" in busy_err
    assert frames_in(jobs / "a.mp4") == 72


def test_wait_lets_the_second_run_finish_after_the_first(jobs, tmp_path, tiny_models, drum_beats):
    cache = fresh_cache(tmp_path / "cache", tiny_models, drum_beats)
    j = job(jobs, "a", seed=1)
    procs = [mvgen_proc(["render", j, "--json", "--wait"], cache) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(json.loads(o)[0]["generated"] for o, _ in outs) == [0, 6]


def test_two_jobs_sharing_a_shot_generate_it_once(jobs, tmp_path, tiny_models, drum_beats):
    """Different outputs, one identical shot: the per-shot lock makes the second wait for it."""
    cache = fresh_cache(tmp_path / "cache", tiny_models, drum_beats)
    shared = ["the same lighthouse"] * 1
    a = job(jobs, "a", seed=3, prompts=shared + [f"a {i}" for i in range(5)])
    b = job(jobs, "b", seed=3, prompts=shared + [f"b {i}" for i in range(5)])
    procs = [mvgen_proc(["render", a, "--json"], cache), mvgen_proc(["render", b, "--json"], cache)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum(json.loads(o)[0]["generated"] for o, _ in outs) == 11
    assert finished_shots(cache) == 11


def test_sigkill_at_ten_random_points(jobs, tmp_path, tiny_models, drum_beats):
    """A batch of 2 jobs x 6 shots killed with SIGKILL (the whole process group, ffmpeg included)
    at 10 random moments; after each kill no output is truncated, and a re-run exits 0, generates
    only the shots that were not finished, and writes valid videos. Two kills run at a time, each
    in its own folder and cache, each on one thread (two processes spinning two OpenMP threads
    each on 2 cores cost a third more time), to fit the 2-core machine's test budget."""
    from concurrent.futures import ThreadPoolExecutor

    a, b = job(jobs, "a", seed=1), job(jobs, "b", seed=100)
    launched = time.time()
    full = run(
        ["render", a, b, "--log-format", "json"],
        fresh_cache(tmp_path / "cache-full", tiny_models, drum_beats),
        threads=1,
    )
    full_s = time.time() - launched
    assert full.returncode == 0, full.stderr
    # Kill between the first shot starting and the process exiting: that is where work can be lost
    # (before it, the process is importing libraries and nothing has been written).
    first_shot = (
        min(json.loads(ln)["time"] for ln in full.stderr.splitlines() if '"shot_start"' in ln) - launched
    )
    rng = random.Random(20261126)
    delays = [rng.uniform(first_shot, full_s) for _ in range(10)]

    def kill_and_resume(i: int) -> str | None:
        folder = tmp_path / f"kill-{i}"
        folder.mkdir()
        for name in ("t.wav", "a.yaml", "b.yaml"):
            (folder / name).write_bytes((jobs / name).read_bytes())
        outs = [folder / "a.mp4", folder / "b.mp4"]
        cache = fresh_cache(tmp_path / f"cache-{i}", tiny_models, drum_beats)
        p = mvgen_proc(
            ["render", folder / "a.yaml", folder / "b.yaml"], cache, threads=1, start_new_session=True
        )
        time.sleep(delays[i])
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        for o in outs:
            if o.exists() and frames_in(o) != 72:
                return f"kill {i} at {delays[i]:.1f}s: {o.name} is truncated"
        done = finished_shots(cache)
        again = run(["render", folder / "a.yaml", folder / "b.yaml", "--json"], cache, threads=1)
        if again.returncode != 0:
            return f"kill {i}: re-run failed: {again.stderr}"
        generated = sum(j["generated"] for j in json.loads(again.stdout))
        if generated != 12 - done:
            return f"kill {i}: re-run generated {generated}, but {done} of 12 were already finished"
        if [frames_in(o) for o in outs] != [72, 72]:
            return f"kill {i}: invalid videos after the re-run"
        leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        return f"kill {i}: temp files left beside the outputs: {leftovers}" if leftovers else None

    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [p for p in pool.map(kill_and_resume, range(10)) if p]
    assert problems == []


def test_sigterm_stops_at_a_safe_point_and_resumes(jobs, tmp_path, tiny_models, drum_beats):
    cache = fresh_cache(tmp_path / "cache", tiny_models, drum_beats)
    j = job(jobs, "a", seed=9, n=6)
    p = mvgen_proc(["render", j], cache)
    deadline = time.monotonic() + 120
    while finished_shots(cache) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "SIGTERM: stopping at the next safe point" in err
    assert err.strip().splitlines()[-1].startswith("mvgen: error: interrupted")
    done = finished_shots(cache)
    assert 1 <= done <= 6
    assert not (jobs / "a.mp4").exists() or frames_in(jobs / "a.mp4") == 72
    again = run(["render", j, "--json"], cache)
    assert again.returncode == 0 and json.loads(again.stdout)[0]["generated"] == 6 - done


@pytest.fixture
def tiny_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill a disk for real: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_leaves_the_previous_output_untouched(jobs, tmp_path, tiny_models, drum_beats, tiny_disk):
    cache = fresh_cache(tmp_path / "cache", tiny_models, drum_beats)
    j = job(jobs, "a", seed=5)
    previous = tiny_disk / "a.mp4"
    # last night's render: a video mvgen wrote (its mark in the tags), which it may replace
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=red:s=64x48:d=0.2", "-c:v", "libx264", "-metadata",
                f"comment={MARK}", str(previous)], what="last night's render")  # fmt: skip
    last_night = previous.read_bytes()
    used = len(last_night)
    (tiny_disk / "filler").write_bytes(b"\0" * (400 * 1024 - 20 * 1024 - used))  # leave ~20 kB free
    r = run(["render", j, "--out", previous], cache)
    assert r.returncode == 1, r.stderr
    error, hint = r.stderr.strip().splitlines()[-2:]
    assert error.startswith("mvgen: error: ") and "disk full while writing the video" in error
    assert hint.startswith("hint: free space in ") and "Traceback" not in r.stderr
    assert previous.read_bytes() == last_night
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["a.mp4", "filler"]
    assert finished_shots(cache) == 6  # the GPU work is kept: a re-run after freeing space only encodes


def test_batch_folder_summary_and_log_file(jobs, tmp_path, tiny_models, drum_beats):
    cache = fresh_cache(tmp_path / "cache", tiny_models, drum_beats)
    job(jobs, "a", seed=1, n=2)
    job(jobs, "b", seed=2, n=2)
    log = tmp_path / "mvgen.log"
    r = run(["batch", jobs, "--log-file", log], cache)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["status", "gen"] and lines[-1] == "2/2 jobs done"
    assert [ln.split()[0] for ln in lines[1:3]] == ["ok", "ok"]
    text = log.read_text()
    assert "=== job 1/2" in text and "=== job 2/2" in text and "wrote " in text and "\r" not in text
    jr = run(["batch", str(jobs / "*.yaml"), "--json", "--log-format", "json"], cache)
    summary = json.loads(jr.stdout)
    assert [(s["status"], s["generated"], s["cached"]) for s in summary] == [("ok", 0, 2), ("ok", 0, 2)]
    for line in jr.stderr.strip().splitlines():
        json.loads(line)


def test_an_invalid_job_stops_the_batch_before_any_generation(jobs, tmp_path, tiny_models, drum_beats):
    cache = fresh_cache(tmp_path / "cache", tiny_models, drum_beats)
    job(jobs, "a", seed=1, n=2)
    write(jobs / "b.yaml", "shots: [{prompt: x, length: -1}]\naudio: t.wav\n")
    r = run(["batch", jobs], cache)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"mvgen: error: {jobs / 'b.yaml'}:1:29: shots[0].length: must be > 0 (got -1)"
    ]
    assert finished_shots(cache) == 0 and not (jobs / "a.mp4").exists()
    r = run(["batch", jobs, "--keep-going", "--json"], cache)
    assert r.returncode == 3, r.stderr
    assert [s["status"] for s in json.loads(r.stdout)] == ["ok", "invalid"]
    assert frames_in(jobs / "a.mp4") == json.loads((jobs / "a.json").read_text())["video"]["frames"]


def test_paths_with_leading_dashes(jobs, tmp_path, tiny_models, drum_beats):
    cache = fresh_cache(tmp_path / "cache", tiny_models, drum_beats)
    j = job(jobs, "-dash", seed=1, n=2)
    r = subprocess.run(
        [sys.executable, "-m", "mvgen", "render", "--", j.name], cwd=jobs, env=env_for(cache), capture_output=True,
        text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert frames_in(jobs / "-dash.mp4") == json.loads((jobs / "-dash.json").read_text())["video"]["frames"]
