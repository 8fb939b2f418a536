"""Takes, `mvgen pick`, and what a render leaves for people (contact sheet, beat plot, HTML report
checked in a real headless Chromium, OTIO timeline read back), through the real CLI on the tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mvgen.cache import ShotCache
from mvgen.media.clips import read_clip
from mvgen.media.score import score_take
from mvgen.timeline import take_seed
from tests.conftest import write
from tests.synth import steady_beats, synth_track

SHOTS = """version: 1
model: tiny
audio: t.wav
video: {width: 256, height: 160, fps: 24}
generation: {steps: 2, seed: 40, takes: 3}   # three takes of every shot
timing: {fit: trim}
shots:
  # the opening
  - id: a
    prompt: a red city
    length: 4
  - {id: b, prompt: a blue sea, length: 4, takes: 1}
  - {id: c, prompt: a green forest, length: 4}
"""


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_takes_are_generated_once_scored_and_the_best_used_then_pick_changes_it(tmp_path, mvgen, cache_dir):
    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    shots = write(tmp_path / "s.yaml", SHOTS)
    r = mvgen("render", shots, "--json", "--log-format", "json")
    assert r.code == 0, r
    job = json.loads(r.out)[0]
    assert (job["generated"], job["takes"]) == (3, 7)  # 3 shots: 3 + 1 + 3 takes
    # Progress: every take announced with its number, every step with the time left from the pace
    # measured so far, counting down to the last step of the last take.
    events = [json.loads(line) for line in r.err.splitlines() if line.startswith("{")]
    starts = [
        (e["shot"], e["extra"]["take"], e["extra"]["takes"]) for e in events if e["event"] == "shot_start"
    ]
    assert starts == [
        ("a", 1, 3),
        ("a", 2, 3),
        ("a", 3, 3),
        ("b", 1, 1),
        ("c", 1, 3),
        ("c", 2, 3),
        ("c", 3, 3),
    ]
    etas = [e["extra"]["eta_s"] for e in events if e["event"] == "step"]
    assert len(etas) == 7 * 2 and etas[-1] == 0.0 and etas[0] > 0
    done = [e for e in events if e["event"] == "shot_done"]
    assert len(done) == 7 and all("eta_s" in e["extra"] for e in done)
    m = json.loads((tmp_path / "s.json").read_text())
    rows = {s["id"]: s for s in m["shots"]}
    cache = ShotCache(cache_dir)
    for sid, base in (("a", 40), ("c", 42)):
        takes = rows[sid]["takes"]
        assert [t["seed"] for t in takes] == [take_seed(base, k) for k in range(3)]
        # every take is its own cache entry, scored from its own frames
        for t in takes:
            clip = read_clip(cache.get(t["cache_key"]).clip)
            assert score_take(clip, rows[sid]["prompt"])["score"] == pytest.approx(t["score"], abs=1e-6)
        scores = [t["score"] for t in takes]
        best = max(range(3), key=lambda i: (scores[i], -i))
        assert rows[sid]["take"] == best + 1
        assert rows[sid]["seed"] == takes[best]["seed"] and rows[sid]["cache_key"] == takes[best]["cache_key"]
    assert rows["b"]["takes"] is None and rows["b"]["take"] == 1 and rows["b"]["seed"] == 41

    # The same render again generates nothing and chooses the same takes.
    r = mvgen("render", shots, "--json")
    assert r.code == 0 and json.loads(r.out)[0]["generated"] == 0, r
    again = {s["id"]: s for s in json.loads((tmp_path / "s.json").read_text())["shots"]}
    assert [again[i]["take"] for i in "ac"] == [rows[i]["take"] for i in "ac"]

    # Pin a take that was not chosen: written into the file (comments kept), nothing generated.
    other = next(t for t in rows["a"]["takes"] if t["take"] != rows["a"]["take"])
    r = mvgen("pick", shots, "a", str(other["take"]))
    assert r.code == 0, r
    text = shots.read_text()
    assert "# the opening" in text and "# three takes of every shot" in text
    r = mvgen("render", shots, "--json")
    assert r.code == 0 and json.loads(r.out)[0]["generated"] == 0, r
    picked = {s["id"]: s for s in json.loads((tmp_path / "s.json").read_text())["shots"]}
    assert picked["a"]["seed"] == other["seed"] and picked["a"]["cache_key"] == other["cache_key"]
    assert picked["a"]["cached"] is True and picked["c"]["cache_key"] == rows["c"]["cache_key"]

    # A take number out of range and an unknown id are clear input errors.
    r = mvgen("pick", shots, "c", "4")
    assert r.code == 2 and "TAKE must be 1 to 3 (got 4)" in r.err, r
    r = mvgen("pick", shots, "nope", "1")
    assert r.code == 2 and "no shot with id 'nope'" in r.err and "hint: ids: a, b, c" in r.err, r


REPORT_SHOTS = """version: 1
model: tiny
audio: t.wav
video: {width: 256, height: 160, fps: 24}
generation: {steps: 2, seed: 3}
timing: {fit: trim}
shots:
  - {id: a, prompt: a red city, length: 4}
  - {id: b, prompt: a blue sea <b>bold</b>, length: 2, takes: 2}
  - {id: c, prompt: a green forest, length: 4, transition: {crossfade: 1}}
  - {id: d, prompt: a desert, length: 2}
"""


def test_report_contact_sheet_and_otio(tmp_path, mvgen, cache_dir):
    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    shots = write(tmp_path / "r.yaml", REPORT_SHOTS)
    r = mvgen("render", shots, "--otio", tmp_path / "edit" / "cut.otio")
    assert r.code == 0, r
    m = json.loads((tmp_path / "r.json").read_text())
    assert m["report"] == {
        "html": str(tmp_path / "r.html"),
        "contact_sheet": str(tmp_path / "r.contact.png"),
        "beat_plot": str(tmp_path / "r.beats.png"),
    }
    # Contact sheet, in shot order: a; the 2 takes of b on a row of their own; c and d.
    sheet = np.asarray(Image.open(tmp_path / "r.contact.png").convert("RGB"))
    assert sheet.shape[1] == 8 + 3 * (240 + 8)
    assert sheet.shape[0] == 30 + 8 + 3 * (150 + 34 + 8)
    assert np.asarray(Image.open(tmp_path / "r.beats.png")).shape[0] > 200

    _check_in_chromium(tmp_path / "r.html", m, tmp_path / "report.png")
    _check_otio(tmp_path / "edit" / "cut.otio", m, tmp_path / "t.wav")


CHROMIUM = "/usr/bin/chromium"


def _check_in_chromium(page_path: Path, manifest: dict, screenshot: Path) -> None:
    """Open the report in headless Chromium (Debian's, driven by Playwright, offline): no console
    errors, the table has a row per slot with its prompt escaped, the video plays the render's
    length, and a screenshot of the table is not blank."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        "Debian's chromium is needed: apt-get install chromium"
    )
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "request",
                lambda req: (
                    errors.append("network: " + req.url)
                    if not req.url.startswith(("file:", "data:"))
                    else None
                ),
            )
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            rows = page.locator("#shots tbody tr")
            assert rows.count() == len(manifest["shots"])
            cells = [rows.nth(i).locator("td").nth(4).inner_text() for i in range(rows.count())]
            assert cells == [s["prompt"] for s in manifest["shots"]]  # "<b>" shown as text, not markup
            duration = page.evaluate(
                """() => new Promise(done => { const v = document.getElementById('video');
                   if (v.readyState >= 1) return done(v.duration);
                   v.addEventListener('loadedmetadata', () => done(v.duration));
                   v.addEventListener('error', () => done(-1)); setTimeout(() => done(-2), 10000); })"""
            )
            assert duration == pytest.approx(manifest["video"]["duration_s"], abs=0.1)
            # a click on a row seeks the video to the shot and plays it: the position is read when
            # the seek begins (by the time a later read runs, playback may have moved it on)
            page.evaluate(
                """() => { window.seekedTo = null; document.getElementById('video').addEventListener(
                   'seeking', e => { window.seekedTo = e.target.currentTime; }, { once: true }); }"""
            )
            rows.nth(2).click()
            page.wait_for_function("window.seekedTo !== null", timeout=10000)
            assert page.evaluate("window.seekedTo") == pytest.approx(
                manifest["shots"][2]["start_s"], abs=0.05
            )
            page.locator("#shots").screenshot(path=str(screenshot))
            page.screenshot(path=str(screenshot.with_name("report-page.png")), full_page=True)
        finally:
            browser.close()
    assert errors == []
    shot = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float32)
    assert shot.shape[0] > 30 * len(manifest["shots"]) and shot.std() > 10  # text on the page, not blank


def _check_otio(path: Path, manifest: dict, audio: Path) -> None:
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(path))
    (video,) = timeline.video_tracks()
    (sound,) = timeline.audio_tracks()
    fps = manifest["video"]["fps"]
    assert len(video) == len(manifest["shots"])
    for i, (clip, shot) in enumerate(zip(video, manifest["shots"], strict=True)):
        where = video.range_of_child_at_index(i)
        assert where.start_time.to_frames() == shot["start_frame"]  # every cut, to the frame
        assert where.start_time.to_seconds() == pytest.approx(shot["start_s"], abs=1e-9)
        assert where.duration.to_frames() == shot["end_frame"] - shot["start_frame"]
        assert clip.name == shot["id"] and clip.metadata["mvgen"]["seed"] == shot["seed"]
        media = Path(clip.media_reference.target_url.removeprefix("file://"))
        assert media.parent == path.parent / "cut_media" and media.is_file()
        assert _frame_count(media) == shot["end_frame"] - shot["start_frame"]
        assert where.start_time.rate == fps
    assert sound[0].media_reference.target_url == audio.resolve().as_uri()
    assert sound.duration().to_frames() == manifest["video"]["frames"]
