"""Transitions and camera moves through a real render: a 6-shot list mixing cut, chain, crossfade and
zoom, compared frame by frame (decoded with PyAV) with the same list cut hard."""

from __future__ import annotations

import json

import av
import numpy as np

from mvgen.media.assemble import SlotClips, _Timeline
from mvgen.timeline import RenderPlan
from tests.conftest import write
from tests.synth import steady_beats, synth_track

SHOTS = """version: 1
model: tiny
audio: t.wav
video: {{width: 256, height: 160, fps: 24}}
generation: {{steps: 2, seed: 4}}
timing: {{fit: trim}}
shots:
  - {{id: a, prompt: a red city, length: 4}}
  - {{id: b, prompt: the city at night, length: 4, transition: chain}}
  - {{id: c, prompt: a blue sea, length: 4, transition: {c}}}
  - {{id: d, prompt: a green forest, length: 4, transition: {d}}}
  - {{id: e, prompt: a desert, length: 4}}
  - {{id: f, prompt: the desert at dusk, length: 4, transition: chain}}
"""


def _frames(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float32)


def _render(tmp_path, mvgen, name, c, d):
    shots = write(tmp_path / f"{name}.yaml", SHOTS.format(c=c, d=d))
    r = mvgen("render", str(shots))
    assert r.code == 0, r
    return _frames(tmp_path / f"{name}.mp4"), json.loads((tmp_path / f"{name}.json").read_text())


def test_blends_keep_every_cut_and_the_duration(tmp_path, mvgen, cache_dir):
    synth_track(tmp_path / "t.wav", steady_beats(120, 13), duration_s=13.0)
    hard, hard_m = _render(tmp_path, mvgen, "hard", "cut", "cut")
    soft, soft_m = _render(tmp_path, mvgen, "soft", "{crossfade: 1}", "zoom")

    # Same clips (nothing regenerated), same cut times, same length.
    assert [s["cached"] for s in soft_m["shots"]] == [True] * 6
    cut = lambda m: [(s["start_frame"], s["end_frame"]) for s in m["shots"]]  # noqa: E731
    assert cut(soft_m) == cut(hard_m) and len(soft) == len(hard) == soft_m["video"]["frames"]
    rows = {s["id"]: s for s in soft_m["shots"]}
    assert [rows[i]["transition"] for i in "abcdef"] == ["cut", "chain", "crossfade", "zoom", "cut", "chain"]
    w = rows["c"]["blend_frames"]
    assert w == 12  # one beat at 120 BPM and 24 fps

    def window(shot):
        c0 = rows[shot]["start_frame"]
        return c0 - w // 2, c0 - w // 2 + w

    # Outside the two blend windows the videos agree (to the encoder's noise) ...
    inside = np.zeros(len(hard), dtype=bool)
    for shot in "cd":
        lo, hi = window(shot)
        inside[lo:hi] = True
    diff = np.abs(soft - hard).mean(axis=(1, 2, 3))
    assert diff[~inside].max() < 2.0
    assert diff[inside].max() > 4.0  # ... and inside them they do not

    # The crossfade is centred on the cut and mixes the two shots linearly: before the cut the
    # incoming shot is held on its first frame, after it the outgoing one on its last.
    c0 = rows["c"]["start_frame"]
    lo, _ = window("c")
    for k in range(lo, lo + w):
        a = (k - lo + 0.5) / w
        outgoing = hard[min(k, c0 - 1)]
        incoming = hard[max(k, c0)]
        expected = (1 - a) * outgoing + a * incoming
        assert np.abs(soft[k] - expected).mean() < 3.0, k

    # The zoom: halfway through, the incoming shot fills the centre half of the frame.
    d0 = rows["d"]["start_frame"]
    h, wd = soft.shape[1:3]
    centre = soft[d0][h // 4 + 4 : 3 * h // 4 - 4, wd // 4 + 4 : 3 * wd // 4 - 4]
    from PIL import Image

    small = np.asarray(
        Image.fromarray(hard[d0].astype(np.uint8)).resize((wd // 2, h // 2), Image.BICUBIC)
    ).astype(np.float32)[4:-4, 4:-4]
    assert np.abs(centre - small).mean() < 6.0


DRIFT = """version: 1
model: tiny
audio: t.wav
video: {width: 256, height: 160, fps: 24}
generation: {steps: 2, seed: 4}
timing: {fit: trim}
shots:
  - {id: a, prompt: a red city, length: 4}
  - {id: b, prompt: a red city, length: 4, transition: chain}
  - {id: c, prompt: a red city, length: 4, transition: chain}
  - {id: d, prompt: a blue sea, length: 4, transition: chain}
  - {id: e, prompt: a blue sea, length: 4, transition: chain}
  - {id: f, prompt: a desert, length: 4}
"""


def test_chained_colour_drift_is_reported(tmp_path, mvgen, cache_dir):
    """Links that continue their prompt are anchored to the settled colours of their run's first
    shot (b, c to a; e to d); a link with a prompt of its own (d) turns into its own colours and is
    not anchored; cut shots have nothing to anchor."""
    synth_track(tmp_path / "t.wav", steady_beats(120, 13), duration_s=13.0)
    r = mvgen("render", str(write(tmp_path / "d.yaml", DRIFT)))
    assert r.code == 0, r
    rows = {s["id"]: s for s in json.loads((tmp_path / "d.json").read_text())["shots"]}
    for i in "bce":
        # Anchored: what is left is what the sRGB gamut clips (the tiny model paints saturated
        # colours), within about one just-noticeable difference (delta E 2.3), and far below the
        # drift before.
        drift = rows[i]["colour_drift"]
        assert drift["after"] <= 3.5 and drift["after"] < drift["before"] / 3, (i, drift)
    assert [rows[i]["colour_drift"] for i in "adf"] == [None, None, None]
    assert rows["d"]["transition"] == "chain"


def test_assembly_holds_at_most_three_clips(tmp_path, mvgen, cache_dir):
    """Streaming: however many shots, the timeline keeps the decoders of three neighbours at most."""
    synth_track(tmp_path / "t.wav", steady_beats(120, 12), duration_s=12.0)
    body = "".join(f"  - {{prompt: shot {i}, length: 2, transition: {{crossfade: 1}}}}\n" for i in range(12))
    shots = write(tmp_path / "many.yaml", "version: 1\nmodel: tiny\naudio: t.wav\nvideo: {width: 64, height: 48, fps: 12}\n"
                  "generation: {steps: 1}\ntiming: {fit: trim}\nshots:\n" + body)  # fmt: skip
    r = mvgen("render", str(shots))
    assert r.code == 0, r
    m = json.loads((tmp_path / "many.json").read_text())
    plan = RenderPlan.from_json(json.loads(mvgen("plan", str(shots), "--json").out))
    clips = [next((cache_dir / "shots").glob(f"*/{s['cache_key']}/clip.*")) for s in m["shots"]]
    timeline = _Timeline(plan, SlotClips.of(clips), lambda k: None)
    most = 0
    for k in range(plan.total_frames):
        timeline.frame(k / plan.fps)
        most = max(most, len(timeline.readers))
    timeline.close()
    assert len(plan.shots) == 12 and most <= 3
