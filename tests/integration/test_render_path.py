"""The render path (pipeline -> RenderState -> executor -> records): a setting that only changes how
clips are made leaves an up-to-date video untouched, and the beat grid is analysed once per render
(the plan, the report and the OTIO timeline share it)."""

from __future__ import annotations

import json

from tests.conftest import drum_track, write

SHOTS = """version: 1
model: tiny
audio: track.wav
output: {OUTPUT}
video: {{width: 160, height: 96, fps: 24}}
generation: {{steps: 2, seed: 5{EXTRA}}}
timing: {{unit: beats, fit: loop}}
shots:
  - {{id: a, prompt: "a red car on a road", length: 4}}
  - {{id: b, prompt: "a blue ocean at noon", length: 1 bar, transition: {{crossfade: 1}}}}
"""


def _project(tmp_path, extra: str = "", output: str = "out.mp4"):
    drum_track(tmp_path / "track.wav", duration_s=6.0)
    return write(tmp_path / "shots.yaml", SHOTS.format(EXTRA=extra, OUTPUT=output))


def test_switching_attention_leaves_an_up_to_date_video_untouched(tmp_path, mvgen, cache_dir):
    shots = _project(tmp_path)
    assert mvgen("render", shots).code == 0
    video = tmp_path / "out.mp4"
    before, mtime = video.read_bytes(), video.stat().st_mtime_ns

    for extra in (", attention: native", ", attention: flash"):
        _project(tmp_path, extra)
        r = mvgen("render", shots)
        assert r.code == 0, r
        assert "up to date" in r.err
        m = json.loads((tmp_path / "out.json").read_text())
        assert m["generation"]["attention"] == extra.split(": ")[1]  # the manifest says what this run used...
        assert m["output"]["reencoded"] is False  # ...and the video was not encoded again
        assert video.read_bytes() == before and video.stat().st_mtime_ns == mtime

    # An encoder setting is part of the output's identity: the same clips, encoded again.
    _project(tmp_path, ", attention: native", output="{path: out.mp4, crf: 23}")
    r = mvgen("render", shots)
    assert r.code == 0, r
    m = json.loads((tmp_path / "out.json").read_text())
    assert m["output"]["reencoded"] is True and m["totals"]["generated"] == 0


def test_the_beat_grid_is_analysed_once_per_render(tmp_path, mvgen, cache_dir, monkeypatch):
    """A spy around the real analysis (it still runs): the plan and the report share one grid."""
    import mvgen.audio.beats as beats

    calls = []
    real = beats.analyze

    def spy(*args, **kwargs):
        calls.append(args[0].path)
        return real(*args, **kwargs)

    monkeypatch.setattr(beats, "analyze", spy)
    shots = _project(tmp_path)
    r = mvgen("render", shots, "--otio", tmp_path / "edit.otio")
    assert r.code == 0, r
    assert calls == [tmp_path / "track.wav"]
    m = json.loads((tmp_path / "out.json").read_text())
    assert m["report"] and (tmp_path / "out.beats.png").is_file()  # the report drew that grid
