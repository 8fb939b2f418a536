"""End to end through the CLI on the tiny model: real diffusers, real librosa, real ffmpeg encodes.
Outputs are decoded with PyAV and checked against the audio, the beat grid and the manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import REPO, drum_track, write

SHOTS = """version: 1
model: tiny
audio: track.wav
output: out/video.mp4
video: {width: 160, height: 96, fps: 24}
generation: {steps: 2, seed: 5}
style: "film grain"
timing: {unit: beats, fit: loop}
shots:
  - {id: intro, prompt: "a red car on a road", length: 4}
  - {id: verse, prompt: "a blue ocean at noon", length: 1 bar}
  - {id: hook, prompt: "a green forest", length: 3}
"""


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        frames = sum(1 for _ in c.decode(video=0))
        return {
            "vcodec": v.codec_context.name,
            "pix_fmt": v.codec_context.pix_fmt,
            "size": (v.codec_context.width, v.codec_context.height),
            "rate": float(v.average_rate),
            "frames": frames,
            "colorspace": v.codec_context.colorspace,
            "primaries": v.codec_context.color_primaries,
            "acodec": a.codec_context.name,
            "sample_rate": a.codec_context.sample_rate,
            "channels": a.codec_context.channels,
            "audio_s": float(a.duration * a.time_base),
        }


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    drum_track(d / "track.wav", duration_s=9.0, sr=44100, channels=2, offset_s=0.2)
    write(d / "shots.yaml", SHOTS)
    return d


def manifest(project: Path) -> dict:
    return json.loads((project / "out" / "video.json").read_text())


def test_render_end_to_end(project, mvgen, cache_dir):
    r = mvgen("render", project / "shots.yaml")
    assert r.code == 0, r
    out = project / "out" / "video.mp4"
    assert r.out.strip() == str(out)
    info = probe(out)
    fps = 24.0
    assert info["vcodec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["size"] == (160, 96) and info["rate"] == fps
    assert info["colorspace"] == 1 and info["primaries"] == 1  # BT.709 matrix and primaries
    assert info["frames"] == round(9.0 * fps)  # as long as the audio, to the frame
    assert info["acodec"] == "aac" and info["sample_rate"] == 44100 and info["channels"] == 2
    assert abs(info["audio_s"] - 9.0) <= 1 / fps

    m = manifest(project)
    assert m["video"]["frames"] == info["frames"] and m["audio"]["sha256"]
    assert m["model"]["id"] == "tiny" and m["model"]["revision"].startswith("sha256:")
    shots = m["shots"]
    assert [s["id"] for s in shots[:4]] == ["intro", "verse", "hook", "intro"]  # fit: loop repeats
    assert shots[0]["prompt"] == "a red car on a road, film grain" and shots[0]["seed"] == 5
    assert shots[2]["seed"] == 7
    assert [s["cached"] for s in shots[:3]] == [False, False, False]
    # a repeat reuses the clip generated for its first slot: the same shot, no seconds of its own
    assert shots[3]["cache_key"] == shots[0]["cache_key"] and shots[3]["seconds"] == 0
    assert m["totals"] == {"slots": len(shots), "shots": 3, "generated": 3, "cached": 0, "takes": 3}
    assert all(s["num_frames"] % 4 == 1 for s in shots)
    # every slot shows its clip at the model's 8 fps: the frames it lasts, never more than exist
    for s in shots:
        assert s["play_frames"] == (s["end_frame"] - s["start_frame"] - 1) * 8 // 24 + 1 or s["end_s"] == 9.0
        assert s["play_frames"] <= s["num_frames"]

    # every cut lands within half an output frame of a beat found by `mvgen beats`
    b = mvgen("beats", project / "track.wav", "--json")
    beats = np.array(json.loads(b.out)["beats_s"])
    assert shots[0]["start_s"] == 0.0
    for s in shots[1:]:
        assert np.min(np.abs(beats - s["start_s"])) <= 0.5 / fps + 1e-6, s
    for prev, s in zip(shots, shots[1:], strict=False):
        assert prev["end_s"] == s["start_s"]


def test_second_run_generates_nothing_then_only_and_force(project, mvgen, cache_dir):
    assert mvgen("render", project / "shots.yaml").code == 0
    first = manifest(project)
    out = project / "out" / "video.mp4"
    before = out.read_bytes()

    r = mvgen("render", project / "shots.yaml")
    assert r.code == 0, r
    second = manifest(project)
    assert all(s["cached"] for s in second["shots"])
    assert [s["cache_key"] for s in second["shots"]] == [s["cache_key"] for s in first["shots"]]
    assert second["output"]["reencoded"] is False and out.read_bytes() == before

    r = mvgen("render", project / "shots.yaml", "--only", "verse")
    assert r.code == 0, r
    only = manifest(project)
    fresh = {s["id"] for s in only["shots"] if not s["cached"]}
    assert fresh == {"verse"}

    r = mvgen("render", project / "shots.yaml", "--force")
    assert r.code == 0, r
    forced = manifest(project)
    assert {s["id"] for s in forced["shots"] if not s["cached"]} == {"intro", "verse", "hook"}
    assert forced["output"]["reencoded"] is True


def test_generated_frames_are_reproducible_and_seed_dependent(project, mvgen, cache_dir):
    """Same seed -> the same clip bytes (regenerated with --force); another seed -> other pixels."""
    from mvgen.cache import ShotCache

    assert mvgen("render", project / "shots.yaml").code == 0
    key = manifest(project)["shots"][0]["cache_key"]
    clip = ShotCache().get(key).clip
    first = clip.read_bytes()
    assert mvgen("render", project / "shots.yaml", "--force").code == 0
    assert ShotCache().get(key).clip.read_bytes() == first
    write(project / "shots.yaml", SHOTS.replace("seed: 5", "seed: 6"))
    assert mvgen("render", project / "shots.yaml").code == 0
    m = manifest(project)
    assert m["shots"][0]["cache_key"] != key and m["shots"][0]["cached"] is False


def test_reordering_shots_costs_no_generation(project, mvgen, cache_dir):
    assert mvgen("render", project / "shots.yaml").code == 0
    text = SHOTS.replace(
        '  - {id: intro, prompt: "a red car on a road", length: 4}\n  - {id: verse, prompt: "a blue ocean at noon", length: 1 bar}\n',
        '  - {id: verse, prompt: "a blue ocean at noon", length: 1 bar, seed: 6}\n  - {id: intro, prompt: "a red car on a road", length: 4, seed: 5}\n',
    )  # seeds pinned so that the moved shots keep theirs
    write(project / "shots.yaml", text)
    r = mvgen("render", project / "shots.yaml")
    assert r.code == 0, r
    m = manifest(project)
    assert [s["id"] for s in m["shots"][:2]] == ["verse", "intro"]
    assert all(s["cached"] for s in m["shots"])
    assert m["output"]["reencoded"] is True  # a new edit, from cached clips


def test_a_shortened_shot_keeps_its_clip_and_a_lengthened_one_is_made_at_its_new_length(
    project, mvgen, cache_dir
):
    """A clip is made for the slot it fills, at the model's own speed. Shortening a shot keeps its
    clip (the shorter slot shows its beginning: no GPU time, the same look); lengthening it past
    its clip makes a new one at the new length, never the old one slowed down to fit."""
    assert mvgen("render", project / "shots.yaml").code == 0
    before = {s["id"]: s for s in manifest(project)["shots"]}
    write(project / "shots.yaml", SHOTS.replace('"a red car on a road", length: 4', '"a red car on a road", length: 2')
          .replace('"a green forest", length: 3', '"a green forest", length: 12'))  # fmt: skip
    r = mvgen("render", project / "shots.yaml")
    assert r.code == 0, r
    rows = manifest(project)["shots"]
    intro = [s for s in rows if s["id"] == "intro"]
    assert all(s["cached"] and s["cache_key"] == before["intro"]["cache_key"] for s in intro)
    assert all(s["play_frames"] < s["num_frames"] == before["intro"]["num_frames"] for s in intro)
    hook = [s for s in rows if s["id"] == "hook"]
    assert hook and not any(s["cached"] for s in hook)
    assert all(
        s["play_frames"] == (s["end_frame"] - s["start_frame"] - 1) * 8 // 24 + 1
        for s in hook
        if s["end_s"] < 9.0
    )
    assert {s["num_frames"] for s in hook} != {before["hook"]["num_frames"]}


@pytest.mark.parametrize(
    "name, sr, channels, kwargs",
    [
        ("mono-8k.wav", 8000, 1, {}),
        ("surround-96k.flac", 96000, 6, {}),
        ("track.ogg", 44100, 2, {"fmt": "OGG", "subtype": "VORBIS"}),
        ("track.mp3", 44100, 2, {"fmt": "MP3", "subtype": "MPEG_LAYER_III"}),
    ],
)
def test_unusual_audio_keeps_rate_and_channels(name, sr, channels, kwargs, project, mvgen, cache_dir):
    drum_track(project / name, duration_s=5.0, sr=sr, channels=channels, **kwargs)
    r = mvgen("render", project / "shots.yaml", "--audio", project / name, "--out", project / "u.mp4")
    assert r.code == 0, r
    info = probe(project / "u.mp4")
    assert (info["acodec"], info["sample_rate"], info["channels"]) == ("aac", sr, channels)
    assert abs(info["frames"] / 24.0 - 5.0) <= 1 / 24 + 0.03  # mp3 adds encoder padding


def _audio_rms(path: Path, start_s: float, end_s: float) -> float:
    with av.open(str(path)) as c:
        chunks = [f.to_ndarray() for f in c.decode(audio=0)]
        rate = c.streams.audio[0].codec_context.sample_rate
    samples = np.concatenate(chunks, axis=1).astype(np.float64)
    if np.issubdtype(chunks[0].dtype, np.integer):  # PCM as int16/int32: scale to [-1, 1]
        samples /= np.iinfo(chunks[0].dtype).max
    seg = samples[:, int(start_s * rate) : int(end_s * rate)]
    return float(np.sqrt(np.mean(seg.astype(np.float64) ** 2)))


def test_fit_trim_ends_after_the_last_shot_with_an_audio_fade(project, mvgen, cache_dir):
    write(project / "shots.yaml", SHOTS.replace("fit: loop", "fit: trim"))
    r = mvgen("render", project / "shots.yaml")
    assert r.code == 0, r
    m = manifest(project)
    assert [s["id"] for s in m["shots"]] == ["intro", "verse", "hook"]
    out = project / "out" / "video.mp4"
    info = probe(out)
    assert info["frames"] == m["video"]["frames"] < round(9.0 * 24)
    end = m["shots"][-1]["end_s"]
    assert abs(info["audio_s"] - end) <= 1 / 24
    # the audio fades out over the last 0.5 s instead of stopping dead mid-bar
    source = _audio_rms(project / "track.wav", end - 0.12, end - 0.02)
    faded = _audio_rms(out, end - 0.12, end - 0.02)
    before = _audio_rms(out, end - 1.5, end - 0.6)
    assert faded < 0.35 * source and before > 0.5 * _audio_rms(project / "track.wav", end - 1.5, end - 0.6)


def test_paths_with_spaces_and_unicode(tmp_path, mvgen, cache_dir):
    d = tmp_path / "my vidéo — ünïcode"
    d.mkdir()
    drum_track(d / "la piste.wav", duration_s=4.0)
    write(
        d / "my shots.yaml", SHOTS.replace("track.wav", "la piste.wav").replace("out/video.mp4", "fin al.mp4")
    )
    r = mvgen("render", d / "my shots.yaml")
    assert r.code == 0, r
    assert probe(d / "fin al.mp4")["frames"] == 96


def test_the_example_renders_on_the_tiny_model(tmp_path, mvgen, cache_dir):
    """The README's first command, with the output redirected: the example stays renderable. As a
    draft (a third of the steps at half the model's size, x264 veryfast: 4x less work than the
    README's render, which the suite's budget does not hold); every stage and the output's frame,
    size, rate, audio and cuts are the same."""
    example = REPO / "examples" / "neon-drive"
    ex = tmp_path / "neon-drive"
    shutil.copytree(example, ex, ignore=shutil.ignore_patterns("*.mp4", "*.json"))
    r = mvgen("render", ex / "shots.yaml", "--model", "tiny", "--quality", "draft", "--quiet")
    assert r.code == 0, r
    out = ex / "neon-drive.draft.mp4"
    info = probe(out)
    assert info["size"] == (832, 480) and info["frames"] == 960 and info["rate"] == 24.0
    assert (info["sample_rate"], info["channels"]) == (44100, 2)
    m = json.loads((ex / "neon-drive.draft.json").read_text())
    # the cast member is written into her three shots' prompts
    assert sum("a young driver in a silver jacket" in s["prompt"] for s in m["shots"] if not s["repeat"]) == 3
    assert len({s["id"] for s in m["shots"]}) == 10
    # the track is 120 BPM from t=0: every cut is on a multiple of 0.5 s, to within half a frame
    for s in m["shots"][1:]:
        assert abs(s["start_s"] / 0.5 - round(s["start_s"] / 0.5)) * 0.5 <= 0.5 / 24 + 0.02, s


def test_beat_grid_overrides_replace_detection(project, mvgen, cache_dir):
    """--bpm/--offset and a beats file (with bar positions) decide the cuts; detection never runs."""
    r = mvgen(
        "render", project / "shots.yaml", "--bpm", "100", "--offset", "0.3", "--out", project / "bpm.mp4"
    )
    assert r.code == 0, r
    m = json.loads((project / "bpm.json").read_text())
    assert m["audio"]["beats_source"] == "bpm" and m["audio"]["tempo_bpm"] == 100
    for s in m["shots"][1:]:
        beats = (s["start_s"] - 0.3) / 0.6
        assert abs(beats - round(beats)) * 0.6 <= 0.5 / 24 + 1e-6, s
    assert not (cache_dir / "beats").exists()  # no analysis was run or cached

    # a beats file, as a DAW exports it: time and position in a 3/4 bar, irregular spacing
    times = [0.1 + 0.55 * k + (0.03 if k % 2 else 0.0) for k in range(16)]
    (project / "beats.txt").write_text(
        "# exported\n" + "".join(f"{t:.3f}\t{k % 3 + 1}\n" for k, t in enumerate(times))
    )
    write(
        project / "file.yaml",
        SHOTS.replace("audio: track.wav", "audio: {path: track.wav, beats_file: beats.txt}"),
    )
    r = mvgen("plan", project / "file.yaml", "--json")
    assert r.code == 0, r
    plan = json.loads(r.out)
    # intro: 4 beats -> beat 4; verse: 1 bar (3 beats here) -> the next downbeat (beat 6 or 9)
    assert plan["shots"][1]["start_s"] == pytest.approx(round(times[4] * 24) / 24)
    assert round(plan["shots"][2]["start_s"] * 24) in {round(times[6] * 24), round(times[9] * 24)}
    b = json.loads(mvgen("beats", project / "track.wav", "--beats-file", project / "beats.txt", "--json").out)
    assert b["beats_s"] == pytest.approx(times) and b["downbeats_s"] == pytest.approx(times[::3])
    assert b["beats_per_bar"] == 3 and b["source"] == "beats_file"
