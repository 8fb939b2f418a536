"""`--backend ray` on a local Ray with two CPU workers and the tiny model: the same video as a local
render, a worker killed mid-shot, a chain kept in order on one worker while cut shots go to the
other, clips coming back through the object store when the workers do not share the cache, LoRAs
loaded and switched on the workers."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import ray  # noqa: E402 - a test dependency: `pip install -e ".[test]"` installs it
from PIL import Image

from tests.conftest import write
from tests.synth import steady_beats, synth_track


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (starting one costs several seconds): two CPUs, two workers."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


SHOTS = """version: 1
model: tiny
audio: t.wav
video: {width: 256, height: 160, fps: 24}
generation: {steps: 2, seed: 9}
timing: {fit: trim}
shots:
  - {id: a, prompt: a red city, length: 2}
  - {id: b, prompt: the city at night, length: 2, transition: chain}
  - {id: c, prompt: a blue sea, length: 2, takes: 2}
  - {id: d, prompt: a storm at sea, length: 2, transition: chain}
  - {id: e, prompt: a desert, length: 2}
  - {id: f, prompt: a forest, length: 2}
"""


def _frames(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float32)


def _manifest(path):
    return json.loads(path.read_text())


def test_ray_render_matches_a_local_one(tmp_path, mvgen, cache_dir, local_ray, monkeypatch):
    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    # a cast member's picture and a storyboard still: the driver hands their pixels to the workers;
    # a bridge into e (drawn from d's last frame to e's first) and an end still on f likewise
    Image.new("RGB", (90, 120), (150, 60, 200)).save(tmp_path / "mira.png")
    Image.new("RGB", (160, 90), (40, 170, 60)).save(tmp_path / "board.png")
    shots = write(
        tmp_path / "s.yaml",
        SHOTS.replace("shots:\n", "cast:\n  mira: {description: a purple figure, images: [mira.png]}\nshots:\n")
        .replace("{id: e, prompt: a desert, length: 2}",
                 "{id: e, prompt: '{mira} in a desert', length: 2, transition: {bridge: 1}}")
        .replace("{id: f, prompt: a forest, length: 2}",
                 "{id: f, prompt: a forest, length: 2, image: board.png, end_image: mira.png}"),
    )  # fmt: skip
    r = mvgen(
        "render", shots, "--backend", "ray", "--ray-workers", "2", "--out", tmp_path / "ray.mp4", "--json"
    )
    assert r.code == 0, r
    job = json.loads(r.out)[0]
    assert (job["generated"], job["takes"]) == (7, 8)  # 6 shots and a bridge, c with 2 takes
    assert "shared cache" in r.err  # the workers write into the driver's cache themselves
    ray_m = _manifest(tmp_path / "ray.json")
    assert {s["ray"]["pid"] for s in ray_m["shots"]} != {os.getpid()}
    assert len({s["ray"]["worker"] for s in ray_m["shots"]}) == 2  # both workers took shots

    monkeypatch.setenv("MVGEN_CACHE_DIR", str(tmp_path / "local-cache"))
    (tmp_path / "local-cache").mkdir()
    (tmp_path / "local-cache" / "models").symlink_to(cache_dir / "models")
    r = mvgen("render", shots, "--out", tmp_path / "local.mp4")
    assert r.code == 0, r
    local_m = _manifest(tmp_path / "local.json")

    def pick(m):
        return [(s["id"], s["start_s"], s["end_s"], s["seed"], s["take"], s["cache_key"]) for s in m["shots"]]

    assert pick(ray_m) == pick(local_m)  # same shots, timing, chosen takes and cache keys (chains too)
    assert [s["id"] for s in ray_m["shots"]][4:] == ["e.bridge", "e", "f"]
    assert [s["reference_mode"] for s in ray_m["shots"]][5:] == ["start", ""]  # e on mira, f on its still
    assert ray_m["shots"][5]["identity"] is not None and ray_m["shots"][6]["image"]["role"] == "image"
    assert ray_m["shots"][4]["end_sha256"] is not None and ray_m["shots"][6]["end_image"]["role"] == "end"

    def records(m):  # every field of every shot record but where and for how long it ran
        return [{k: v for k, v in s.items() if k not in ("seconds", "ray")} for s in m["shots"]]

    # Both produced their slots through render.produce.produce_slot: the same records, take
    # scores, conditioning hashes and colour anchoring included, and the same totals.
    assert records(ray_m) == records(local_m) and ray_m["totals"] == local_m["totals"]
    a, b = _frames(tmp_path / "ray.mp4"), _frames(tmp_path / "local.mp4")
    assert a.shape == b.shape and np.abs(a - b).mean() <= 1.0  # <= 1/255 on average

    # The Ray render filled the cache exactly as a local one: a local re-render generates nothing.
    monkeypatch.setenv("MVGEN_CACHE_DIR", str(cache_dir))
    r = mvgen("render", shots, "--out", tmp_path / "again.mp4", "--json")
    assert r.code == 0 and json.loads(r.out)[0]["generated"] == 0, r


CHAIN = """version: 1
model: tiny
audio: t.wav
video: {width: 256, height: 160, fps: 24}
generation: {steps: 3, seed: 21}
timing: {fit: trim}
shots:
  - {id: c1, prompt: a lighthouse, length: 2}
  - {id: c2, prompt: the lighthouse at dusk, length: 2, transition: chain}
  - {id: c3, prompt: the lighthouse at night, length: 2, transition: chain}
  - {id: c4, prompt: the lighthouse in a storm, length: 2, transition: chain}
  - {id: x1, prompt: a red car, length: 1}
  - {id: x2, prompt: a blue car, length: 1}
  - {id: x3, prompt: a green car, length: 1}
  - {id: x4, prompt: a white car, length: 1}
"""


def test_a_chain_runs_in_order_on_one_worker_while_cut_shots_go_to_the_other(tmp_path, cache_dir, local_ray):
    """Order and placement from what the workers reported, in the order they reported it (one
    worker's events reach the driver in order); nothing here depends on how long anything took."""
    from mvgen import api

    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    shots = write(tmp_path / "c.yaml", CHAIN)
    events: list[tuple[str, str, int]] = []

    def progress(e) -> None:
        if e.event in ("shot_start", "shot_done") and "pid" in e.extra:
            events.append((e.event, e.shot, e.extra["pid"]))

    result = api.render_video(shots, backend="ray", ray_workers=2, progress=progress)
    rows = {s["id"]: s for s in result.manifest["shots"]}
    chain_pid = rows["c1"]["ray"]["pid"]
    assert {rows[i]["ray"]["pid"] for i in ("c1", "c2", "c3", "c4")} == {chain_pid}  # one worker
    # ... each link started after the one before it was done, as that worker reported them
    on_chain_worker = [(ev, shot) for ev, shot, pid in events if pid == chain_pid and shot.startswith("c")]
    assert on_chain_worker == [(ev, f"c{k}") for k in range(1, 5) for ev in ("shot_start", "shot_done")]
    # The chain and the first cut shot were handed out together, one to each worker: the other
    # worker's first shot is a cut shot, and at least one cut shot ran there.
    other = [(ev, shot) for ev, shot, pid in events if pid != chain_pid]
    assert other and other[0] == ("shot_start", other[0][1]) and other[0][1].startswith("x")
    assert any(rows[i]["ray"]["pid"] != chain_pid for i in ("x1", "x2", "x3", "x4"))


def test_killing_a_worker_mid_shot_still_yields_the_whole_video(tmp_path, cache_dir, local_ray):
    """The first shot a worker starts, that worker is SIGKILLed: Ray restarts it, the group is sent
    again, and the video is complete; the killed shot was sent exactly twice."""
    from mvgen import api
    from mvgen.progress import ProgressEvent

    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    # 40 steps: a shot lasts longer than its start event takes to reach the driver, so the kill
    # lands mid-shot rather than after the shot was stored
    shots = write(tmp_path / "k.yaml", SHOTS.replace("steps: 2", "steps: 40"))
    killed: dict[str, int] = {}

    def progress(e: ProgressEvent) -> None:
        if e.event == "shot_start" and "pid" in e.extra and not killed:
            killed[e.shot] = e.extra["pid"]
            os.kill(e.extra["pid"], signal.SIGKILL)

    result = api.render_video(shots, backend="ray", ray_workers=2, progress=progress)
    assert killed
    ((shot, pid),) = killed.items()
    rows = {s["id"]: s for s in result.manifest["shots"]}
    assert rows[shot]["ray"]["attempts"] == 2 and rows[shot]["ray"]["pid"] != pid
    assert all(r["ray"]["attempts"] in (1, 2) for r in rows.values() if "ray" in r)
    frames = _frames(tmp_path / "k.mp4")
    assert len(frames) == result.manifest["video"]["frames"]
    assert [s["cached"] for s in result.manifest["shots"]] == [False] * 6


def test_workers_without_the_shared_cache_send_clips_back(tmp_path, mvgen, cache_dir, local_ray, monkeypatch):
    """Workers whose cache is not the driver's (another node): clips come back through the object
    store and the driver stores them, so the driver's cache is as after a local render."""
    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    shots = write(tmp_path / "n.yaml", SHOTS.replace("seed: 9", "seed: 90"))
    elsewhere = tmp_path / "worker-cache"
    elsewhere.mkdir()
    (elsewhere / "models").symlink_to(cache_dir / "models")
    monkeypatch.setenv("MVGEN_RAY_WORKER_CACHE_DIR", str(elsewhere))
    r = mvgen("render", shots, "--backend", "ray", "--ray-workers", "2", "--log-format", "json")
    assert r.code == 0, r
    assert "clips come back through the object store" in r.err
    m = _manifest(tmp_path / "n.json")
    monkeypatch.delenv("MVGEN_RAY_WORKER_CACHE_DIR")
    for s in m["shots"]:
        for k in [s["cache_key"]] + [t["cache_key"] for t in s["takes"] or []]:
            assert (next((cache_dir / "shots").glob(f"*/{k}/clip.*"))).is_file()
    r = mvgen("render", shots, "--out", tmp_path / "local.mp4", "--json")
    assert r.code == 0 and json.loads(r.out)[0]["generated"] == 0, r


def test_without_ray_installed_exit_4_with_the_install_hint(tmp_path, mvgen, cache_dir, monkeypatch):
    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    shots = write(tmp_path / "s.yaml", SHOTS)
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray looks like
    r = mvgen("render", shots, "--backend", "ray")
    assert r.code == 4, r
    assert "needs Ray" in r.err and 'pip install "mvgen[ray]"' in r.err
    assert not (tmp_path / "s.mp4").exists() and not (cache_dir / "shots").exists()


def test_ray_workers_run_each_shot_with_its_loras(tmp_path, cache_dir, local_ray):
    """The workers load the shot list's LoRA files (the same paths: one machine here) and switch
    them per shot as the local executor does: the same records, the LoRA shot orange."""
    from mvgen import api

    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    (tmp_path / "sunset.safetensors").symlink_to(
        Path(__file__).resolve().parents[1] / "data" / "loras" / "sunset.safetensors"
    )
    shots = write(tmp_path / "l.yaml", SHOTS.replace("generation: {steps: 2, seed: 9}", "generation: {steps: 6, seed: 9}")
                  .replace("{id: e, prompt: a desert, length: 2}", "{id: e, prompt: blue embers, length: 2, loras: [{path: sunset.safetensors}]}"))  # fmt: skip
    result = api.render_video(shots, backend="ray", ray_workers=2)
    rows = {s["id"]: s for s in result.manifest["shots"]}
    assert [len(rows[i]["loras"]) for i in "abcdef"] == [0, 0, 0, 0, 1, 0]
    assert "ray" in rows["e"]
    with av.open(str(tmp_path / "l.mp4")) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float64)
    rgb = frames[rows["e"]["start_frame"] : rows["e"]["end_frame"]].mean(axis=(0, 1, 2))
    assert rgb[0] - rgb[2] > 100, rgb  # blue embers turned orange on the worker
