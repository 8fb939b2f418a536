"""Every model family through the real diffusers pipelines: a tiny render per family, the presets,
offline behaviour with no weights, and the size rules checked before any model loads."""

from __future__ import annotations

import json
import re
import socket

import av
import numpy as np
import pytest

from mvgen.config.presets import all_presets, resolve_model
from mvgen.families import FAMILIES, PIPELINE_FAMILIES
from tests.conftest import write
from tests.synth import steady_beats, synth_track

TINY = {
    "wan": "tiny",
    "ltx": "tiny-ltx",
    "cogvideox": "tiny-cogvideox",
    "hunyuan": "tiny-hunyuan",
    "skyreels": "tiny-skyreels",
    "kandinsky": "tiny-kandinsky",
    "hunyuan15": "tiny-hunyuan15",
    "ltx2": "tiny-ltx2",
    "anyflow": "tiny-anyflow",
    "helios": "tiny-helios",
}
REAL = sorted(name for name, p in all_presets().items() if not p.builtin)


def _frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.parametrize("family", sorted(TINY))
def test_tiny_render_per_family(family, tmp_path, mvgen, cache_dir, monkeypatch):
    import diffusers
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    audio = []  # LTX-2 makes audio with the video: mvgen never decodes it (the song is the soundtrack)
    monkeypatch.setattr(diffusers.AutoencoderKLLTX2Audio, "decode", lambda *a, **k: audio.append("vae"))
    monkeypatch.setattr(LTX2Vocoder, "forward", lambda *a, **k: audio.append("vocoder"))
    model = TINY[family]
    preset = all_presets()[model]
    synth_track(tmp_path / "t.wav", steady_beats(120, 6), duration_s=6.0)
    shots = write(
        tmp_path / "s.yaml",
        f"version: 1\nmodel: {model}\naudio: t.wav\nvideo: {{width: 320, height: 192, fps: 24}}\n"
        "generation: {steps: 2, seed: 3}\nshots:\n  - {id: a, prompt: a red city, length: 6}\n"
        "  - {id: b, prompt: a blue sea, length: 6}\n",
    )
    r = mvgen("render", str(shots))
    assert r.code == 0, r
    frames = _frames(tmp_path / "s.mp4")
    assert len(frames) == 144 and frames[0].shape == (192, 320, 3)
    assert audio == []
    m = json.loads((tmp_path / "s.json").read_text())
    assert m["model"]["family"] == family and m["model"]["id"] == model
    for s in m["shots"]:  # each clip was made with the family's own frame rule
        assert s["num_frames"] % preset.frame_step == preset.frame_offset
        assert s["num_frames"] <= preset.max_frames
    # Two prompts and seeds, two different pictures (the cut is at 3 s = frame 72).
    first, second = frames[36].astype(int), frames[108].astype(int)
    assert np.abs(first - second).mean() > 1  # (tiny Wan renders near-flat colour fields)
    # The clips in the cache decode to their planned frame counts.
    for s in m["shots"]:
        clip = next((cache_dir / "shots").glob(f"*/{s['cache_key']}/clip.*"))
        assert len(_frames(clip)) == s["num_frames"]


def test_presets_cover_every_family():
    presets = all_presets()
    assert len(REAL) >= 10
    assert {p.family for p in presets.values() if not p.builtin} == set(FAMILIES)
    for name in REAL:
        p = presets[name]
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", p.repo_id or ""), name
        assert p.vram_gb > 0 and p.fps > 0, name


def test_models_lists_the_presets(mvgen, empty_cache):
    r = mvgen("models", "--json")
    assert r.code == 0, r
    rows = {row["name"]: row for row in json.loads(r.out)}
    assert set(rows) == set(all_presets())
    for name in REAL:
        row = rows[name]
        assert row["local"] is False  # an empty Hugging Face cache here
        offset = f"+{row['frame_offset']}" if row["frame_offset"] else ""  # Helios: 33k
        assert row["frame_rule"] == f"{row['frame_step']}k{offset}"
        for key in ("family", "repo_id", "fps", "width", "height", "vram_gb"):
            assert row[key], (name, key)
    table = mvgen("models").out
    assert all(name in table for name in rows)


@pytest.mark.parametrize("name", REAL)
def test_real_preset_offline_exits_4_with_the_pull_command(name, tmp_path, mvgen, empty_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    calls = []
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(OSError)
    )
    synth_track(tmp_path / "t.wav", steady_beats(120, 4), duration_s=4.0)
    shots = write(
        tmp_path / "s.yaml", f"version: 1\nmodel: {name}\naudio: t.wav\nshots:\n  - {{prompt: a}}\n"
    )
    r = mvgen("render", str(shots))
    assert r.code == 4, r
    first, hint = r.err.strip().splitlines()
    assert all_presets()[name].repo_id in first
    assert f"`mvgen models pull {name}`" in hint
    family = all_presets()[name].family  # the same family's built-in tiny model runs its code path now
    tiny = [n for n, p in all_presets().items() if p.builtin and p.family == family]
    assert tiny and hint.endswith(f"--model {tiny[0]}"), hint
    assert calls == []  # HF_HUB_OFFLINE: not even a connection attempt
    assert not (tmp_path / "s.mp4").exists()


def test_blocked_network_exits_4_too(tmp_path, mvgen, empty_cache, monkeypatch):
    """Not marked offline, but no route to the hub: one quick connection attempt, then exit 4."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: connection refused
    synth_track(tmp_path / "t.wav", steady_beats(120, 4), duration_s=4.0)
    shots = write(
        tmp_path / "s.yaml", "version: 1\nmodel: ltx-video\naudio: t.wav\nshots:\n  - {prompt: a}\n"
    )
    r = mvgen("render", str(shots))
    assert r.code == 4 and "cannot be reached" in r.err, r
    r = mvgen("models", "pull", "ltx-video")
    assert r.code == 4 and "cannot be reached" in r.err, r


# (preset, video width, height, expected message)
SIZE_CASES = [
    ("wan2.1-t2v-1.3b", 840, 480, r"width 840 must be a multiple of 16 for Wan \(model wan2\.1-t2v-1\.3b\): use 832 or 848"),
    ("wan2.2-ti2v-5b", 1280, 720, r"height 720 must be a multiple of 32 for Wan \(model wan2\.2-ti2v-5b\): use 704 or 736"),
    ("ltx-video", 784, 512, r"width 784 must be a multiple of 32 for LTX-Video \(model ltx-video\): use 768 or 800"),
    ("ltx-video-0.9.7-distilled", 768, 500, r"height 500 must be a multiple of 32 for LTX-Video .*: use 480 or 512"),
    ("cogvideox-5b", 720, 490, r"height 490 must be a multiple of 16 for CogVideoX \(model cogvideox-5b\): use 480 or 496"),
    ("cogvideox1.5-5b", 1366, 768, r"width 1366 must be a multiple of 16 for CogVideoX .*: use 1360 or 1376"),
    ("hunyuanvideo", 960, 540, r"height 540 must be a multiple of 16 for HunyuanVideo \(model hunyuanvideo\): use 528 or 544"),
    ("hunyuanvideo", 961, 544, r"must be even for H\.264 yuv420p \(got 961\): use 960 or 962"),
]  # fmt: skip


@pytest.mark.parametrize(
    "name, width, height, pattern", SIZE_CASES, ids=[f"{c[0]}-{c[1]}x{c[2]}" for c in SIZE_CASES]
)
def test_invalid_size_is_rejected_before_any_model_loads(
    name, width, height, pattern, tmp_path, mvgen, empty_cache
):
    synth_track(tmp_path / "t.wav", steady_beats(120, 4), duration_s=4.0)
    shots = write(
        tmp_path / "s.yaml",
        f"version: 1\nmodel: {name}\naudio: t.wav\nvideo: {{width: {width}, height: {height}}}\nshots:\n  - {{prompt: a}}\n",
    )
    r = mvgen("plan", str(shots))
    assert r.code == 2, r
    assert re.search(r"s\.yaml:4:\d+: video\.(width|height): " + pattern, r.err.splitlines()[0]), r
    assert not (empty_cache / "models").exists()


def test_every_family_pipeline_class_maps_back(tmp_path):
    """A folder whose model_index.json names any known pipeline class gets that family's rules."""
    for cls, family in PIPELINE_FAMILIES.items():
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "model_index.json").write_text(json.dumps({"_class_name": cls}))
        ref = resolve_model(str(tmp_path / cls))
        assert ref.preset.family == family
        assert ref.preset.size_multiple == FAMILIES[family].defaults["size_multiple"]
