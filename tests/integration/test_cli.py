"""The small commands: beats, plan, validate, models, and a light `import mvgen`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import REPO, drum_track, write


def test_beats_json_on_a_120_bpm_track(tmp_path, mvgen, empty_cache):
    drum_track(tmp_path / "t.wav", bpm=120, duration_s=12.0, offset_s=0.25)
    r = mvgen("beats", tmp_path / "t.wav", "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    assert set(data) >= {"tempo_bpm", "duration_s", "beats_s", "downbeats_s", "sections_s"}
    assert abs(data["tempo_bpm"] - 120) < 1.2
    assert abs(data["duration_s"] - 12.0) < 1e-3
    truth = 0.25 + 0.5 * np.arange(24)
    beats = np.array(data["beats_s"])
    assert len(beats) >= 20
    assert np.median([np.min(np.abs(truth - b)) for b in beats]) < 0.035
    assert set(data["downbeats_s"]) <= set(data["beats_s"])
    downs = np.array(data["downbeats_s"])
    assert np.all(np.abs(np.diff(downs) - 2.0) < 0.05)  # one every 4 beats


def test_beats_are_cached_by_content_hash(tmp_path, mvgen, empty_cache):
    track = drum_track(tmp_path / "t.wav", duration_s=6.0)
    first = json.loads(mvgen("beats", track, "--json").out)
    [entry] = list((empty_cache / "beats").glob("*.json"))
    # the cache is what answers next time: a doctored entry shows through
    doctored = {**first, "tempo_bpm": 77.0}
    entry.write_text(json.dumps(doctored))
    assert json.loads(mvgen("beats", track, "--json").out)["tempo_bpm"] == 77.0
    # the same bytes under another name hit the same entry
    (tmp_path / "copy.wav").write_bytes(track.read_bytes())
    assert json.loads(mvgen("beats", tmp_path / "copy.wav", "--json").out)["tempo_bpm"] == 77.0


def test_plan_json_and_table(tmp_path, mvgen, empty_cache):
    drum_track(tmp_path / "t.wav", duration_s=8.0)
    shots = write(
        tmp_path / "s.yaml",
        "model: tiny\naudio: t.wav\nvideo: {width: 128, height: 96, fps: 24}\n"
        "shots:\n  - {id: one, prompt: first, length: 4}\n  - {id: two, prompt: second, length: 1 bar}\n",
    )
    r = mvgen("plan", shots, "--json")
    assert r.code == 0, r
    plan = json.loads(r.out)
    rows = plan["shots"]
    assert {"id", "start_s", "end_s", "num_frames", "seed", "prompt"} <= set(rows[0])
    assert rows[0]["start_s"] == 0 and rows[-1]["end_s"] == plan["duration_s"]
    table = mvgen("plan", shots)
    assert table.code == 0 and "one" in table.out and "two" in table.out and "BPM" in table.out
    assert not (empty_cache / "models").exists()  # planning never loads a model
    ok = mvgen("validate", shots)
    assert ok.code == 0 and ok.out.startswith("ok: ")


def test_models_lists_presets(mvgen, empty_cache):
    r = mvgen("models", "--json")
    assert r.code == 0, r
    rows = {row["name"]: row for row in json.loads(r.out)}
    assert rows["tiny"]["local"] is True
    wan = rows["wan2.1-t2v-1.3b"]
    assert (wan["repo_id"], wan["fps"], wan["frame_rule"], wan["max_frames"]) == (
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", 16.0, "4k+1", 81,
    )  # fmt: skip
    assert "wan2.1-t2v-1.3b" in mvgen("models").out


def test_importing_mvgen_and_the_cli_is_light():
    code = "import sys, mvgen, mvgen.cli, mvgen.api; print(sorted(m for m in ('torch','diffusers','librosa','moviepy') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip() == "[]"


def test_python_dash_m_and_version():
    r = subprocess.run([sys.executable, "-m", "mvgen", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "mvgen" in r.stdout


def _one_shot_job(folder):
    """One shot on a given grid: these tests read the log, and a new process analysing the track
    would spend ~5 s importing librosa and compiling its kernels first."""
    drum_track(folder / "t.wav", duration_s=4.0)
    return write(
        folder / "s.yaml",
        "model: tiny\naudio: {path: t.wav, bpm: 120}\nvideo: {width: 64, height: 64, fps: 12}\n"
        "generation: {steps: 2}\nshots:\n  - {prompt: first, length: 4}\n",
    )


def test_non_tty_render_log_has_no_carriage_returns(tmp_path, cache_dir):
    shots = _one_shot_job(tmp_path)
    r = subprocess.run([sys.executable, "-m", "mvgen", "render", str(shots)], capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    assert b"\r" not in r.stderr and b"\x1b[" not in r.stderr
    lines = r.stderr.decode().strip().splitlines()
    assert any("shot 1/1" in ln for ln in lines) and lines[-1].split(" ", 1)[1].startswith("wrote ")


def test_json_log_format_parses_line_by_line(tmp_path, cache_dir):
    shots = _one_shot_job(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "mvgen", "render", str(shots), "--log-format", "json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stderr.strip().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "done" and "shot_start" in kinds and "step" in kinds
    assert events[-1]["extra"]["generated"] == 1


def test_plan_works_without_the_models_weights_but_render_does_not(tmp_path, mvgen, empty_cache, monkeypatch):
    """Planning needs the preset's rules, not its weights: a director can plan on a laptop."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    drum_track(tmp_path / "t.wav", duration_s=6.0)
    shots = write(
        tmp_path / "s.yaml", "model: wan2.1-t2v-1.3b\naudio: t.wav\nshots:\n  - {prompt: a, length: 4}\n"
    )
    r = mvgen("plan", shots, "--json")
    assert r.code == 0, r
    plan = json.loads(r.out)
    assert plan["native_fps"] == 16 and all(s["num_frames"] % 4 == 1 for s in plan["shots"])
    assert mvgen("render", shots).code == 4
    assert mvgen("validate", shots).code == 4


def test_m4a_audio_is_decoded_with_ffmpeg(tmp_path, mvgen, empty_cache):
    from mvgen.ffmpeg import run_ffmpeg

    wav = drum_track(tmp_path / "t.wav", duration_s=8.0)
    run_ffmpeg(["-i", str(wav), "-c:a", "aac", str(tmp_path / "t.m4a")], what="test")
    a = json.loads(mvgen("beats", wav, "--json").out)
    b = json.loads(mvgen("beats", tmp_path / "t.m4a", "--json").out)
    assert abs(a["tempo_bpm"] - b["tempo_bpm"]) < 1.0
    assert abs(b["duration_s"] - 8.0) < 0.1


def test_bare_mvgen_prints_the_ordinary_help(mvgen, empty_cache):
    """Issue 24: not the help squashed onto one error line."""
    r = mvgen()
    assert r.code == 0, r
    assert r.err == ""
    lines = r.out.splitlines()
    assert lines[0].startswith("Usage: mvgen")
    assert "Commands:" in lines and any(line.split()[:1] == ["render"] for line in lines)


def test_reference_prints_the_shot_list_of_every_key(mvgen, empty_cache, tmp_path):
    """`mvgen reference` is the file the errors point to, wherever mvgen is installed."""
    r = mvgen("reference")
    assert r.code == 0, r
    assert r.out == (REPO / "configs" / "reference.yaml").read_text(encoding="utf-8")
    from mvgen.config import parse_shotlist_text

    parse_shotlist_text(r.out, tmp_path / "reference.yaml")  # a valid shot list
    r = mvgen("reference", "--path")
    assert r.code == 0 and Path(r.out.strip()).read_text(encoding="utf-8") == mvgen("reference").out
