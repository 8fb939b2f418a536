"""Slots, shots and takes (mvgen/counts.py) are counted once and said alike in the five places a
user reads them: the log, the final line, `--json`, the manifest and the report (issue 24)."""

from __future__ import annotations

import json
import re

from tests.conftest import write
from tests.synth import steady_beats, synth_track

SHOTS = """version: 1
model: tiny
audio: t.wav
video: {{width: 128, height: 96, fps: 12}}
generation: {{steps: 2, seed: 3}}
timing: {{fit: loop}}
shots:
  - {{id: a, prompt: {a}, length: 2, takes: 2}}
  - {{id: b, prompt: {b}, length: 2}}
  - {{id: c, prompt: a green field, length: 4}}
"""


def _render(tmp_path, mvgen, a: str, b: str):
    shots = write(tmp_path / "x.yaml", SHOTS.format(a=a, b=b))
    r = mvgen("render", shots, "--json", "--log-format", "text")
    assert r.code == 0, r
    return r, json.loads((tmp_path / "x.json").read_text())


def test_the_log_the_final_line_json_manifest_and_report_agree(tmp_path, mvgen, cache_dir):
    synth_track(tmp_path / "t.wav", steady_beats(120, 8), duration_s=8.0)
    _render(tmp_path, mvgen, "a red car", "a blue sea")  # c goes into the cache
    # a and b change: a's two takes and b's one are generated; c comes from the cache; the list
    # runs twice through the song (fit: loop): 6 slots of 3 shots
    r, manifest = _render(tmp_path, mvgen, "a yellow car", "a white sea")
    said = "6 slots, 3 shots: 2 generated (3 takes), 1 cached"
    numbers = {"slots": 6, "shots": 3, "generated": 2, "cached": 1, "takes": 3}
    # 1. the log, before generating
    assert re.search(r"\[generate\] 2 shots to generate \(3 takes\), 1 cached$", r.err, re.M), r.err
    # 2. the final line
    assert re.search(rf"wrote \S+x\.mp4 \({re.escape(said)}, [\d.]+s\)$", r.err, re.M), r.err
    # 3. --json
    job = json.loads(r.out)[0]
    assert {k: job[k] for k in numbers} == numbers
    # 4. the manifest, in total and slot by slot
    assert manifest["totals"] == numbers
    rows = manifest["shots"]
    assert [s["id"] for s in rows] == ["a", "b", "c"] * 2
    assert [s["cached"] for s in rows] == [False, False, True] * 2
    assert len({s["cache_key"] for s in rows}) == 3
    assert sum(len(s["takes"] or [None]) for s in rows[:2]) == 3  # a's 2 takes and b's one
    # 5. the report
    html = (tmp_path / "x.html").read_text()
    assert said in html

    # an unchanged re-run says "up to date", not "wrote"
    r, manifest = _render(tmp_path, mvgen, "a yellow car", "a white sea")
    assert re.search(
        r"up to date: \S+x\.mp4 \(6 slots, 3 shots: 0 generated, 3 cached; not re-encoded", r.err
    ), r.err
    assert "wrote" not in r.err
    assert manifest["totals"] == {"slots": 6, "shots": 3, "generated": 0, "cached": 3, "takes": 0}
