"""`render --preview` (the animatic) and `mvgen plan` (the cut sheet) on the example and on small
lists, through the real CLI."""

from __future__ import annotations

import json
import re
import shutil

import av
import numpy as np

from mvgen.media.preview import card_colour
from mvgen.timeline import RenderPlan, timecode
from tests.conftest import REPO, write
from tests.synth import steady_beats, synth_track

EXAMPLE = REPO / "examples" / "neon-drive" / "shots.yaml"


def _frames(path, step: int = 4) -> np.ndarray:
    """Every frame, every ``step``-th pixel each way (an 832x480 minute is 1.1 GB whole; the card
    colours and the cut detector's mean change read the same from a 16th of it)."""
    with av.open(str(path)) as c:
        assert c.streams.audio, "the animatic carries the track"
        return np.stack([f.to_ndarray(format="rgb24")[::step, ::step] for f in c.decode(video=0)])


def test_preview_of_the_example_cuts_exactly_where_the_render_would(tmp_path, mvgen, empty_cache):
    r = mvgen("plan", EXAMPLE, "--model", "tiny", "--json")
    assert r.code == 0, r
    plan = RenderPlan.from_json(json.loads(r.out))
    r = mvgen("render", EXAMPLE, "--preview", "--model", "tiny", "--out", tmp_path / "neon.mp4")
    assert r.code == 0, r
    assert r.out.strip() == str(tmp_path / "neon.preview.mp4")
    assert not (tmp_path / "neon.mp4").exists() and not (empty_cache / "shots").exists()  # nothing generated
    manifest = json.loads((tmp_path / "neon.preview.json").read_text())
    assert manifest["preview"] is True
    assert [(s["id"], s["start_s"], s["end_s"]) for s in manifest["shots"]] == [
        (s.id, round(s.start_s, 6), round(s.end_s, 6)) for s in plan.shots
    ]
    frames = _frames(tmp_path / "neon.preview.mp4")
    assert len(frames) == plan.total_frames == 960
    # Each slot shows its own card colour at its middle (section hue, alternating shade).
    for s in plan.shots:
        mid = frames[(s.start_frame + s.end_frame) // 2]
        corner = mid[mid.shape[0] // 2 :, mid.shape[1] // 2 :].reshape(-1, 3).astype(float)
        assert np.abs(np.median(corner, axis=0) - card_colour(plan, s)).max() <= 6, s.id
    # A frame-difference cut detector finds the hard cuts on their planned frames, and nothing
    # else that big (beat flashes and the progress bar are small; blends are gradual).
    diff = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    detected = {k + 1 for k in np.flatnonzero(diff > 8)}
    hard = {s.start_frame for s in plan.shots[1:] if s.blend == "cut" and not s.chain}
    blended = {
        k
        for s in plan.shots
        if s.blend != "cut"
        for k in range(s.start_frame - s.blend_frames, s.start_frame + s.blend_frames)
    }
    assert hard and hard <= detected
    assert detected - hard <= blended


def _table(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if re.match(r"^\s*\d+\s+\S+\s+\d+:\d\d\.\d\d", line)]


def test_plan_prints_the_cut_sheet_and_json_carries_the_same_numbers(tmp_path, mvgen, cache_dir):
    synth_track(tmp_path / "t.wav", steady_beats(120, 9), duration_s=9.0)
    shots = write(
        tmp_path / "p.yaml",
        """version: 1
model: tiny
audio: t.wav
video: {width: 256, height: 160, fps: 24}
generation: {steps: 2, seed: 9}
timing: {fit: loop}
shots:
  - {id: a, prompt: a red city, length: 4}
  - {id: b, prompt: a blue sea, length: 2, takes: 2}
  - {id: c, prompt: a green forest, length: 4, retime: nearest}
""",
    )
    r = mvgen("plan", shots)
    assert r.code == 0, r
    rows = _table(r.out)
    # the video's retiming in the header, a slot's own beside it
    assert "(model renders 64x32 @ 8, retime flow)" in r.out.splitlines()[0]
    lines = [ln for ln in r.out.splitlines() if re.match(r"^\s*\d+\s+\S+\s+\d+:\d\d\.\d\d", ln)]
    assert [("retime nearest" in ln) for ln in lines] == [ln.split()[1] == "c" for ln in lines]
    r = mvgen("plan", shots, "--json")
    data = json.loads(r.out)
    assert len(rows) == len(data["shots"]) == 5  # a, b, c, then again until the song ends
    for row, s in zip(rows, data["shots"], strict=True):
        assert row[1] == s["id"] and row[2] == timecode(s["start_s"]) and row[3] == timecode(s["end_s"])
        assert float(row[4]) == round(s["length_beats"], 2) and float(row[5]) == round(s["bars"], 2)
        assert int(row[6]) == s["num_frames"] and int(row[7]) == s["seed"] and int(row[8]) == s["takes"]
        assert row[10] == "-" and s["cast"] == []  # nobody of a cast in these shots
        assert row[11] == s["status"] and row[12] == ("unknown" if s["status"] == "new" else "-")
        # warnings: what the slot's numbers say. A slot plays its clip at the model's 8 fps unless
        # the clip (at most 33 frames) is shorter than the slot: then it is slowed, and says so.
        needed = (s["slot_frames"] - 1) * 8 // 24 + 1
        slowed = (s["slot_frames"] / 24) / (min(s["play_frames"], s["num_frames"]) / 8)
        assert ("looped (pass 2)" in s["warnings"]) == (s["repeat"] == 1)
        assert any(w == f"slowed down x{slowed:.2f}" for w in s["warnings"]) == (s["num_frames"] < needed)
        assert s["play_frames"] == min(needed, s["num_frames"])
        assert ("trimmed at the song's end" in s["warnings"]) == (
            s["end_frame"] < s["start_frame"] + s["slot_frames"]
        )
    assert [s["retime"] for s in data["shots"]] == [
        "nearest" if s["id"] == "c" else "flow" for s in data["shots"]
    ]
    assert [s["status"] for s in data["shots"]] == ["new"] * 3 + ["repeat"] * 2
    # on tiny a slot longer than one call is made of chained segments: nothing is slowed down
    assert not any(w.startswith("slowed down") for s in data["shots"] for w in s["warnings"])
    t = data["totals"]
    assert (t["slots"], t["new_shots"], t["cached_shots"], t["repeats"], t["generations"]) == (5, 3, 0, 2, 4)
    assert (t["shots"], t["takes"]) == (3, 4)
    assert t["est_gpu_s"] is None and t["rate_source"] is None
    text = mvgen("plan", shots).out
    assert (
        "5 slots, 3 shots: 3 to generate (4 takes), 0 cached; 2 slots repeat a shot" in text
        and "est. GPU time unknown" in text
    )

    # After a render the cache knows the model's pace: the same plan is all cached, and a changed
    # prompt is new with an estimate from the measured seconds.
    assert mvgen("render", shots).code == 0
    data = json.loads(mvgen("plan", shots, "--json").out)
    assert [s["status"] for s in data["shots"]] == ["cached"] * 3 + ["repeat"] * 2
    assert data["totals"]["est_gpu_s"] == 0 and data["totals"]["rate_source"] == "measured here (4 shots)"
    # The rate is the median of seconds per step per megapixel-frame over the cached shots' records.
    cached = [json.loads(p.read_text()) for p in (cache_dir / "shots").glob("*/*/meta.json")]
    rate = float(
        np.median(
            [m["seconds"] / (m["steps"] * m["num_frames"] * m["width"] * m["height"] / 1e6) for m in cached]
        )
    )
    write(shots, shots.read_text().replace("a red city", "a red city at dawn"))
    r = mvgen("plan", shots, "--json")
    data = json.loads(r.out)
    assert [s["status"] for s in data["shots"]] == ["new", "cached", "cached", "repeat", "repeat"]
    a = data["shots"][0]
    assert a["est_gpu_s"] == round(
        rate * 2 * a["num_frames"] * data["gen_width"] * data["gen_height"] / 1e6, 1
    )
    assert data["totals"]["est_gpu_s"] == a["est_gpu_s"]
    text = mvgen("plan", shots).out
    assert (
        _table(text)[0][12] == f"{a['est_gpu_s']:.1f}s"
        and "5 slots, 3 shots: 1 to generate, 2 cached; 2 slots repeat a shot" in text
    )

    # A step cache makes shots faster: until shots were rendered with it, the estimate says its pace
    # comes from shots without it; afterwards it uses only theirs.
    write(shots, shots.read_text().replace("seed: 9}", "seed: 9, cache: magcache}"))
    data = json.loads(mvgen("plan", shots, "--json").out)
    assert data["totals"]["rate_source"] == "measured here without the step cache (4 shots)"
    assert data["totals"]["est_gpu_s"] > 0
    assert mvgen("render", shots).code == 0
    metas = [json.loads(p.read_text()) for p in (cache_dir / "shots").glob("*/*/meta.json")]
    assert sorted(m.get("step_cache") for m in metas if m.get("step_cache")) == ["magcache:0.06"] * 4
    data = json.loads(mvgen("plan", shots, "--json").out)
    assert data["totals"]["rate_source"] == "measured here (4 shots)"


def test_preview_copy_keeps_the_example_untouched(tmp_path, mvgen, empty_cache):
    """The animatic of a copied project lands beside the copy's output, never over a render."""
    work = tmp_path / "neon"
    shutil.copytree(EXAMPLE.parent, work, ignore=shutil.ignore_patterns("*.mp4", "*.json", "*.html", "*.png"))
    (work / "neon-drive.mp4").write_bytes(b"a finished render")
    r = mvgen("render", work / "shots.yaml", "--preview")
    assert r.code == 0, r
    assert (work / "neon-drive.mp4").read_bytes() == b"a finished render"
    assert (work / "neon-drive.preview.mp4").stat().st_size > 10_000
