"""Malformed input through the real CLI: the documented exit code, one line naming the place,
no traceback, nothing written. Every case is checked before any model loads."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import drum_track, write

GOOD_SHOTS = "  - {id: a, prompt: 'a red car', length: 4}\n  - {id: b, prompt: 'a blue sea', length: 4}\n"
HEAD = "version: 1\nmodel: tiny\naudio: track.wav\nvideo: {width: 128, height: 96, fps: 12}\n"

CAST = "cast:\n  mira: {description: a woman in a red coat, images: [mira.png]}\n"

# (name, shots.yaml text, exit code, regex the first stderr line must match)
CASES = [
    ("bad-yaml", HEAD + "shots: [{prompt: a\n", 2, r"shots\.yaml:\d+:\d+: invalid YAML"),
    ("tab-indent", HEAD + "shots:\n\t- prompt: a\n", 2, r"shots\.yaml:\d+:\d+: invalid YAML"),
    ("top-level-list", "- prompt: a\n", 2, r"shots\.yaml:1:1: the shot list must be a mapping"),
    ("empty-file", "", 2, r"shots\.yaml: the shot list is empty"),
    ("unknown-key", HEAD + "modle: tiny\nshots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:5:1: modle: unknown key"),
    ("unknown-shot-key", HEAD + "shots:\n  - {prompt: a, lenght: 4}\n", 2, r"shots\.yaml:6:\d+: shots\[0\]\.lenght: unknown key"),
    ("width-not-int", HEAD.replace("width: 128", "width: wide") + "shots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:4:\d+: video\.width: .*got 'wide'"),
    ("negative-length", HEAD + "shots:\n  - {prompt: a, length: -2}\n", 2, r"shots\.yaml:6:\d+: shots\[0\]\.length: must be > 0 \(got -2\)"),
    ("zero-length", HEAD + "shots:\n  - {prompt: a, length: 0}\n", 2, r"shots\[0\]\.length: must be > 0"),
    ("bad-length-string", HEAD + "shots:\n  - {prompt: a, length: two bars}\n", 2, r"shots\[0\]\.length: must be a number"),
    ("missing-prompt", HEAD + "shots:\n  - {length: 4}\n", 2, r"shots\.yaml:6:\d+: shots\[0\]\.prompt: required key is missing"),
    ("empty-prompt", HEAD + "shots:\n  - {prompt: '', length: 4}\n", 2, r"shots\[0\]\.prompt: must not be empty$"),
    ("no-shots", HEAD + "shots: []\n", 2, r"shots\.yaml:5:8: shots: must not be empty$"),
    ("shots-missing", HEAD, 2, r"shots\.yaml:1:1: shots: required key is missing"),
    ("version-2", HEAD.replace("version: 1", "version: 2") + "shots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:1:10: version: unsupported schema version \(got 2\)"),
    ("bad-unit", HEAD + "timing: {unit: minutes}\nshots:\n" + GOOD_SHOTS, 2, r"timing\.unit: must be one of beats, bars, seconds, sections \(got 'minutes'\)$"),
    ("bad-fit", HEAD + "timing: {fit: bounce}\nshots:\n" + GOOD_SHOTS, 2, r"timing\.fit: .*got 'bounce'"),
    ("zero-fps", HEAD.replace("fps: 12", "fps: 0") + "shots:\n" + GOOD_SHOTS, 2, r"video\.fps: must be > 0 \(got 0\)$"),
    ("odd-width", HEAD.replace("width: 128", "width: 127") + "shots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:4:\d+: video\.width: must be even"),
    ("duplicate-id", HEAD + "shots:\n  - {id: a, prompt: x}\n  - {id: a, prompt: y}\n", 2, r"shots\.yaml:7:\d+: shots\[1\]\.id: duplicate id 'a'"),
    ("negative-seed", HEAD + "shots:\n  - {prompt: a, seed: -1}\n", 2, r"shots\[0\]\.seed: must be >= 0 \(got -1\)$"),
    ("bad-id", HEAD + "shots:\n  - {prompt: a, id: 'has space'}\n", 2, r"shots\[0\]\.id: .*pattern"),
    ("missing-audio", HEAD.replace("track.wav", "nope.wav") + "shots:\n" + GOOD_SHOTS, 2, r"nope\.wav: audio file not found"),
    ("text-as-wav", HEAD.replace("track.wav", "notes.wav") + "shots:\n" + GOOD_SHOTS, 2, r"notes\.wav: not a readable audio file"),
    ("empty-wav", HEAD.replace("track.wav", "empty.wav") + "shots:\n" + GOOD_SHOTS, 2, r"empty\.wav: the audio file is empty"),
    ("too-short", HEAD.replace("track.wav", "short.wav") + "shots:\n" + GOOD_SHOTS, 2, r"short\.wav: the track is 1\.00 s long"),
    ("silent", HEAD.replace("track.wav", "silent.wav") + "shots:\n" + GOOD_SHOTS, 2, r"silent\.wav: the track is silent"),
    ("unknown-model", HEAD.replace("model: tiny", "model: wan-9000") + "shots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:2:8: model: unknown model 'wan-9000'"),
    ("hub-model-offline", HEAD.replace("model: tiny", "model: wan2.1-t2v-1.3b").replace("width: 128", "width: 832").replace("height: 96", "height: 480") + "shots:\n" + GOOD_SHOTS, 4, r"model 'wan2\.1-t2v-1\.3b': weights for Wan-AI/Wan2\.1-T2V-1\.3B-Diffusers are not in the Hugging Face cache"),
    ("output-not-mp4", HEAD + "output: video.avi\nshots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:5:9: output: the output must be an \.mp4 file"),
    ("duplicate-key", HEAD + "model: wan-9000\nshots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:5:1: model: duplicate key \(first set on line 2\)"),
    ("duplicate-shot-key", HEAD + "shots:\n  - {prompt: a, prompt: b}\n", 2, r"shots\.yaml:6:\d+: shots\[0\]\.prompt: duplicate key"),
    ("beats-file-missing", HEAD.replace("audio: track.wav", "audio: {path: track.wav, beats_file: nope.txt}") + "shots:\n" + GOOD_SHOTS, 2, r"nope\.txt: beats file not found"),
    ("beats-file-bad-line", HEAD.replace("audio: track.wav", "audio: {path: track.wav, beats_file: bad-line.txt}") + "shots:\n" + GOOD_SHOTS, 2, r"bad-line\.txt:3: not a time in seconds \(got 'abc'\)"),
    ("beats-file-not-increasing", HEAD.replace("audio: track.wav", "audio: {path: track.wav, beats_file: backwards.txt}") + "shots:\n" + GOOD_SHOTS, 2, r"backwards\.txt:3: beat times must increase \(0\.5 after 1\)"),
    ("beats-file-bad-position", HEAD.replace("audio: track.wav", "audio: {path: track.wav, beats_file: bad-pos.txt}") + "shots:\n" + GOOD_SHOTS, 2, r"bad-pos\.txt:2: the position in the bar counts from 1 \(got '0'\)"),
    ("beats-file-empty", HEAD.replace("audio: track.wav", "audio: {path: track.wav, beats_file: empty.txt}") + "shots:\n" + GOOD_SHOTS, 2, r"empty\.txt: a beats file needs at least 2 beat times \(found 0\)"),
    ("beats-file-binary", HEAD.replace("audio: track.wav", "audio: {path: track.wav, beats_file: track.wav}") + "shots:\n" + GOOD_SHOTS, 2, r"track\.wav: not a text file"),
    ("beats-file-past-the-end", HEAD.replace("audio: track.wav", "audio: {path: track.wav, beats_file: late.txt}") + "shots:\n" + GOOD_SHOTS, 2, r"late\.txt: fewer than 2 of its beats fall inside the track"),
    ("bpm-and-beats-file", HEAD.replace("audio: track.wav", "audio: {path: track.wav, bpm: 120, beats_file: b.txt}") + "shots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:3:8: audio: set either bpm \(with offset_s\) or beats_file, not both"),
    ("negative-bpm", HEAD.replace("audio: track.wav", "audio: {path: track.wav, bpm: -120}") + "shots:\n" + GOOD_SHOTS, 2, r"audio\.bpm: must be > 0 \(got -120\)$"),
    ("offset-without-bpm", HEAD.replace("audio: track.wav", "audio: {path: track.wav, offset_s: 0.1}") + "shots:\n" + GOOD_SHOTS, 2, r"audio: offset_s goes with bpm"),
    ("offset-past-the-end", HEAD.replace("audio: track.wav", "audio: {path: track.wav, bpm: 120, offset_s: 60}") + "shots:\n" + GOOD_SHOTS, 2, r"offset_s 60 is past the end of the track"),
    ("prompt-is-a-list", HEAD + "shots:\n  - {prompt: [a, b]}\n", 2, r"shots\.yaml:6:\d+: shots\[0\]\.prompt: Input should be a valid string"),
    ("shots-is-a-mapping", HEAD + "shots: {prompt: a}\n", 2, r"shots\.yaml:5:8: shots: Input should be a valid list"),
    ("video-is-a-list", HEAD.replace("video: {width: 128, height: 96, fps: 12}", "video: [128, 96]") + "shots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:4:8: video: Input should be a valid dictionary"),
    ("style-is-a-list", HEAD + "style: [film]\nshots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:5:8: style: Input should be a valid string"),
    ("non-utf8", None, 2, r"shots\.yaml: not UTF-8 text"),
    ("truncated-wav", HEAD.replace("track.wav", "truncated.wav") + "shots:\n" + GOOD_SHOTS, 2, r"truncated\.wav: the track is 1\.\d\d s long"),
    ("header-claims-10-hours", HEAD.replace("track.wav", "liar.wav") + "shots:\n" + GOOD_SHOTS, 2, r"liar\.wav: the track is 1\.00 s long"),
    ("audio-is-a-folder", HEAD.replace("track.wav", "sub") + "shots:\n" + GOOD_SHOTS, 2, r"sub: is a folder, not an audio file"),
    ("video-file-without-audio", HEAD.replace("track.wav", "silent-film.mp4") + "shots:\n" + GOOD_SHOTS, 2, r"silent-film\.mp4: not a readable audio file"),
    ("too-short-shot", HEAD + "shots:\n  - {prompt: a, length: 4}\n  - {prompt: b, length: 0.01}\n", 2, r"shots\.yaml:7:\d+: shots\[1\]\.length: shot 'shot-002' is shorter than one output frame"),
    # a cast and stills (issue 28): every mistake before any model loads
    ("cast-unknown-in-prompt", HEAD + CAST + "shots:\n  - {prompt: '{mria} runs'}\n", 2, r"shots\.yaml:8:\d+: shots\[0\]\.prompt: unknown cast member \{mria\} \(known: mira\); did you mean `mira`\?$"),
    ("cast-unknown-in-list", HEAD + CAST + "shots:\n  - {prompt: a, cast: [mira, bob]}\n", 2, r"shots\.yaml:8:\d+: shots\[0\]\.cast\[1\]: unknown cast member 'bob' \(known: mira\)$"),
    ("cast-unmatched-brace", HEAD + CAST + "shots:\n  - {prompt: '{mira runs'}\n", 2, r"shots\[0\]\.prompt: unmatched '\{': write \{name\} for a cast member \(known: mira\)"),
    ("cast-empty-description", HEAD + "cast:\n  mira: {description: ''}\nshots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:6:\d+: cast\.mira\.description: must not be empty$"),
    ("cast-bad-name", HEAD + "cast:\n  'mira lee': {description: a}\nshots:\n" + GOOD_SHOTS, 2, r"shots\.yaml:6:\d+: cast\.mira lee: a cast name starts with a letter, then letters, digits, - or _ \(at most 32; got 'mira lee'\)$"),
    ("cast-image-missing", HEAD + CAST.replace("mira.png", "nope.png") + "shots:\n  - {prompt: '{mira}'}\n", 2, r"shots\.yaml:6:\d+: cast\.mira\.images\[0\]: nope\.png not found"),
    ("still-unreadable", HEAD + "shots:\n  - {prompt: a, image: broken.png}\n", 2, r"shots\.yaml:6:\d+: shots\[0\]\.image: cannot read broken\.png: not a picture"),
    ("still-too-small", HEAD + "shots:\n  - {prompt: a, image: small.png}\n", 2, r"shots\[0\]\.image: small\.png is 40x48; a still needs at least 64 px a side$"),
    ("still-is-a-folder", HEAD + "shots:\n  - {prompt: a, image: sub}\n", 2, r"shots\[0\]\.image: sub is not a file$"),
    ("still-and-chain", HEAD + "shots:\n  - {prompt: a}\n  - {prompt: b, image: mira.png, transition: chain}\n", 2, r"shots\[1\]\.image: a shot with a still starts on it, and a chained one"),
    ("cast-pictures-without-i2v", HEAD.replace("model: tiny", "model: wan2.1-t2v-1.3b").replace("width: 128", "width: 832").replace("height: 96", "height: 480") + CAST + "shots:\n  - {prompt: '{mira} runs'}\n", 2, r"shots\.yaml:6:\d+: cast\.mira\.images: mira's pictures need a model that takes reference images \(VACE\) or a start frame \(image-to-video\), and 'wan2\.1-t2v-1\.3b' takes neither$"),
    ("still-without-i2v", HEAD.replace("model: tiny", "model: wan2.1-t2v-1.3b").replace("width: 128", "width: 832").replace("height: 96", "height: 480") + "shots:\n  - {prompt: a, image: mira.png}\n", 2, r"shots\[0\]\.image: a storyboard still is a start frame: it needs an image-to-video model, and 'wan2\.1-t2v-1\.3b' has none$"),
    # end frames and bridges (issue 29): refused before any model loads
    ("bridge-longer-than-slot", HEAD + "shots:\n  - {id: a, prompt: a, length: 2}\n  - {id: b, prompt: b, length: 4, transition: {bridge: 3}}\n", 2, r"shots\.yaml:7:\d+: shots\[1\]\.transition: a bridge of 3 beats is longer than the slot of shot 'a' beside it \([\d.]+ beats\)"),
    ("bridge-on-first-shot", HEAD + "shots:\n  - {prompt: a, transition: {bridge: 1}}\n  - {prompt: b}\n", 2, r"shots\[0\]\.transition: a bridge leads from the shot before into this one, and the first shot has none"),
    ("bridge-without-flf", HEAD.replace("model: tiny", "model: wan2.1-t2v-1.3b").replace("width: 128", "width: 832").replace("height: 96", "height: 480") + "shots:\n  - {prompt: a}\n  - {prompt: b, transition: {bridge: 1}}\n", 2, r"shots\[1\]\.transition: a bridge is drawn by a first-and-last-frame model, and 'wan2\.1-t2v-1\.3b' has none$"),
    ("end-image-unreadable", HEAD + "shots:\n  - {prompt: a, end_image: broken.png}\n", 2, r"shots\.yaml:6:\d+: shots\[0\]\.end_image: cannot read broken\.png: not a picture"),
    ("end-next-on-the-last-shot", HEAD + "timing: {fit: trim}\nshots:\n  - {id: a, prompt: a, length: 4}\n  - {id: b, prompt: b, length: 4, end: next}\n", 2, r"shots\[1\]\.end: shot 'b' is the last: there is no next shot to end on"),
    ("end-next-before-a-chain", HEAD + "shots:\n  - {id: a, prompt: a, end: next}\n  - {id: b, prompt: b, transition: chain}\n", 2, r"shots\[0\]\.end: the next slot \('b'\) is chained from this shot's last frame"),
    ("end-image-and-end-next", HEAD + "shots:\n  - {prompt: a, end: next, end_image: mira.png}\n  - {prompt: b}\n", 2, r"shots\[0\]\.end: a shot ends on its `end_image:` or on the next shot's first frame: drop one$"),
    # the 2026 families (issue 31): a step cache diffusers has no hooks for, refused before any model loads
    ("step-cache-without-hooks", HEAD.replace("model: tiny", "model: skyreels-v2-df-1.3b-540p") + "generation: {cache: fbc}\nshots:\n  - {prompt: a}\n", 2, r"shots\.yaml:\d+:\d+: generation\.cache: fbc does not run on SkyReels-V2 \('skyreels-v2-df-1\.3b-540p'\)"),
    ("bridge-prompt-without-bridge", HEAD + "shots:\n  - {prompt: a}\n  - {prompt: b, bridge_prompt: fly}\n", 2, r"shots\[1\]\.bridge_prompt: this shot has no bridge into it"),
]  # fmt: skip


def _lying_wav(path, data_s: float, claimed_s: float) -> None:
    """A 16-bit mono WAV holding ``data_s`` of samples whose header claims ``claimed_s``."""
    import struct

    drum_track(path, duration_s=max(data_s, 2.5), sr=8000)
    raw = path.read_bytes()
    at = raw.find(b"data")
    header, body = bytearray(raw[: at + 8]), raw[at + 8 : at + 8 + int(data_s * 8000) * 2]
    claim = min(int(claimed_s * 8000) * 2, 2**32 - 64)
    header[at + 4 : at + 8] = struct.pack("<I", claim)
    header[4:8] = struct.pack("<I", claim + at)
    path.write_bytes(bytes(header) + body)


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    drum_track(d / "track.wav", duration_s=6.0)
    full = drum_track(d / "full.wav", duration_s=6.0)
    (d / "truncated.wav").write_bytes(full.read_bytes()[: len(full.read_bytes()) // 4])  # cut mid-data
    _lying_wav(d / "liar.wav", data_s=1.0, claimed_s=10 * 3600)
    (d / "sub").mkdir()
    (d / "bad-line.txt").write_text("0.5\n1.0\nabc\n")
    (d / "backwards.txt").write_text("0.0\n1.0\n0.5\n")
    (d / "bad-pos.txt").write_text("0.0 1\n0.5 0\n")
    (d / "empty.txt").write_text("# no beats\n")
    (d / "late.txt").write_text("100\n101\n102\n")
    from mvgen.ffmpeg import run_ffmpeg

    run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc=s=64x64:d=3", "-an", str(d / "silent-film.mp4")], what="fixture"
    )
    (d / "notes.wav").write_text("these are my notes, not audio\n" * 20)
    (d / "empty.wav").write_bytes(b"")
    drum_track(d / "short.wav", duration_s=1.0)
    sf.write(str(d / "silent.wav"), np.zeros(22050 * 4, dtype=np.float32), 22050)
    from PIL import Image

    Image.new("RGB", (96, 80), (200, 30, 40)).save(d / "mira.png")
    Image.new("RGB", (40, 48), (200, 30, 40)).save(d / "small.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    return d


@pytest.mark.parametrize("name, text, code, pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_shot_list(name, text, code, pattern, project, mvgen, empty_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    if text is None:
        (project / "shots.yaml").write_bytes(b"version: 1\nshots: [{prompt: \xff\xfe}]\n")
        shots = project / "shots.yaml"
    else:
        shots = write(project / "shots.yaml", text)
    before = sorted(p.name for p in project.iterdir())
    r = mvgen("render", shots)
    assert r.code == code, r
    lines = r.err.strip().splitlines()
    assert 1 <= len(lines) <= 2, r
    assert lines[0].startswith("mvgen: error: "), r
    assert re.search(pattern, lines[0]), r
    if len(lines) == 2:
        assert lines[1].startswith("hint: ")
    assert "Traceback" not in r.err + r.out
    assert sorted(p.name for p in project.iterdir()) == before  # nothing written beside the shot list
    assert not (empty_cache / "shots").exists()  # no clip generated
    assert not (empty_cache / "models").exists()  # no model built or loaded


def test_forty_or_more_cases():
    assert len(CASES) + len(ARG_CASES) >= 40


# (arguments after `mvgen`, with {d} for the project folder; regex for the first stderr line)
ARG_CASES = [
    (["render"], r"Missing argument 'SHOTS\.\.\.'"),
    (["render", "{d}/shots.yaml", "--device", "tpu"], r"'tpu' is not one of"),
    (["render", "{d}/shots.yaml", "--bogus"], r"No such option '--bogus'"),
    (["frobnicate"], r"No such command 'frobnicate'"),
    (["render", "{d}/shots.yaml", "--out", "{d}/sub"], r"--out: .*sub is a folder; name an \.mp4 file"),
    (["render", "{d}/shots.yaml", "--out", "{d}/video.mov"], r"--out: the output must be an \.mp4 file"),
    (["render", "{d}/shots.yaml", "--only", " , "], r"give one or more shot ids"),
    (["render", "{d}/shots.yaml", "--audio", "{d}/nope.flac"], r"nope\.flac: audio file not found"),
    (["render", "{d}/shots.yaml", "--model", "nonsense"], r"--model: unknown model 'nonsense'"),
    (["render", "{d}/shots.yaml", "--log-file", "{d}/no/such/dir/log.txt"], r"--log-file .*: cannot open for appending"),
    (["render", "{d}/shots.yaml", "{d}/twin.yaml", "--out", "{d}/x.mp4"], r"--out and --audio apply to one shot list"),
    (["render", "{d}/shots.yaml", "{d}/twin.yaml", "--bpm", "120"], r"--bpm, --offset and --beats-file apply to one shot list"),
    (["plan", "{d}/shots.yaml", "--plot", "{d}/grid.svg"], r"'.*grid\.svg' must end in \.png"),
    (["beats", "{d}/track.wav", "--plot", "/proc/nope/grid.png"], r"grid\.png: cannot write the plot"),
    (["batch", "{d}/*.nothing"], r"the pattern matches no file"),
    (["batch", "{d}/sub"], r"sub: no shot lists \(\*\.yaml, \*\.yml\) in this folder"),
    (["render", "{d}/shots.yaml", "{d}/twin.yaml"], r"twin\.yaml: writes .*shots\.mp4, like .*shots\.yaml; give each job its own output"),
    (["beats", "{d}/notes.wav"], r"notes\.wav: not a readable audio file"),
    (["render", "{d}/shots.yaml", "--bpm", "120", "--beats-file", "{d}/b.txt"], r"--bpm and --beats-file: give one or the other"),
    (["render", "{d}/shots.yaml", "--offset", "0.2"], r"--offset goes with --bpm"),
    (["plan", "{d}/shots.yaml", "--bpm", "0"], r"--bpm must be between 0 and 400 \(got 0\)"),
    (["beats", "{d}/track.wav", "--beats-file", "{d}/backwards.txt"], r"backwards\.txt:3: beat times must increase"),
    (["render", "{d}/shots.yaml", "--device", "cuda"], r"--device cuda: no CUDA GPU is available here"),
]  # fmt: skip


@pytest.mark.parametrize("args, pattern", ARG_CASES, ids=[" ".join(a[:1] + a[2:4]) for a, _ in ARG_CASES])
def test_bad_arguments_exit_2_in_one_line(args, pattern, project, mvgen, empty_cache):
    write(project / "shots.yaml", HEAD + "shots:\n" + GOOD_SHOTS)
    write(project / "twin.yaml", HEAD + "output: shots.mp4\nshots:\n" + GOOD_SHOTS)
    before = sorted(p.name for p in project.iterdir())
    r = mvgen(*[a.format(d=project) for a in args])
    expected = 4 if args[-2:] == ["--device", "cuda"] else 2  # no GPU: an environment error
    assert r.code == expected, r
    first = r.err.strip().splitlines()[0]
    assert first.startswith("mvgen: error: ") and re.search(pattern, first), r
    assert len(r.err.strip().splitlines()) <= 2
    assert "Traceback" not in r.err
    assert sorted(p.name for p in project.iterdir()) == before
    assert not (empty_cache / "shots").exists()


def test_only_with_unknown_id(project, mvgen, cache_dir):
    shots = write(project / "shots.yaml", HEAD + "shots:\n" + GOOD_SHOTS)
    r = mvgen("render", shots, "--only", "a,zzz")
    assert r.code == 2, r
    assert "--only: no shot with id 'zzz'" in r.err
    assert not (cache_dir / "shots").exists()


def test_missing_shot_list_file(mvgen, empty_cache, tmp_path):
    r = mvgen("render", tmp_path / "nope.yaml")
    assert r.code == 2 and "nope.yaml: shot list not found" in r.err, r


def test_debug_shows_the_traceback(project, mvgen, empty_cache):
    shots = write(project / "shots.yaml", HEAD + "shots: []\n")
    r = mvgen("--debug", "render", shots)
    assert r.code == 2 and "Traceback" in r.err


def test_every_mistake_is_reported_at_once_in_file_order(project, mvgen, empty_cache):
    """Issue 24: a shot list with several mistakes gets a line for each (file:line:col: path:
    message), in the order they appear in the file, from `validate` and `render` alike."""
    text = (
        HEAD.replace("fps: 12", "fps: 0")  # line 4
        + "timing: {fit: lop}\n"  # line 5
        + "shots:\n"
        + "  - {prompt: a, lenght: 4}\n"  # line 7
        + "  - {prompt: b, length: -2}\n"  # line 8
        + "  - {prompt: c, transition: crossfad}\n"  # line 9
    )
    shots = write(project / "shots.yaml", text)
    for command in ("validate", "render"):
        r = mvgen(command, shots)
        assert r.code == 2, r
        lines = r.err.strip().splitlines()
        assert all(line.startswith("mvgen: error: ") for line in lines), r
        where = [re.match(r"mvgen: error: \S*shots\.yaml:(\d+):(\d+): (\S+):", line) for line in lines]
        assert all(where), r
        assert [(int(m[1]), m[3]) for m in where] == [
            (4, "video.fps"), (5, "timing.fit"), (7, "shots[0].lenght"), (8, "shots[1].length"), (9, "shots[2].transition"),
        ]  # fmt: skip
        positions = [(int(m[1]), int(m[2])) for m in where]
        assert positions == sorted(positions)
    assert not (empty_cache / "models").exists()


def test_more_than_twenty_mistakes_are_capped_with_a_count(project, mvgen, empty_cache):
    body = "".join(f"  - {{prompt: p{i}, length: -{i + 1}}}\n" for i in range(25))
    r = mvgen("validate", write(project / "shots.yaml", HEAD + "shots:\n" + body))
    assert r.code == 2, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 21
    assert [re.search(r"shots\[(\d+)\]\.length: must be > 0", line)[1] for line in lines[:20]] == [
        str(i) for i in range(20)
    ]
    assert lines[20] == "mvgen: error: ... and 5 more errors"


# (the mistake, regex of its line: every accepted form of the key, and the near miss's fix)
NEAR_MISSES = [
    ("transition: crossfad", r"shots\[0\]\.transition: must be cut, chain, zoom, \{crossfade: N\}, \{zoom: N\} or \{bridge: N\} \(N in beats\) \(got 'crossfad'\); did you mean \{crossfade: 1\}\?$"),
    ("transition: zom", r"shots\[0\]\.transition: must be cut, chain, zoom, .*\(got 'zom'\); did you mean zoom\?$"),
    ("transition: {crossfad: 1}", r"shots\[0\]\.transition\.crossfad: unknown key; did you mean `crossfade`\?$"),
    ("transition: 3", r"shots\[0\]\.transition: must be cut, chain, zoom, \{crossfade: N\}, \{zoom: N\} or \{bridge: N\} \(N in beats\) \(got 3\)$"),
    ("lenght: 4", r"shots\[0\]\.lenght: unknown key; did you mean `length`\?$"),
    ("length: 3 barz", r"shots\[0\]\.length: must be a number \(in timing\.unit\), or '8 beats', '2 bars', '3\.5s', 'section', '2 sections' \(got '3 barz'\); did you mean '3 bars'\?$"),
    ("camera: {zom: [1, 2]}", r"shots\[0\]\.camera\.zom: unknown key; did you mean `zoom`\?$"),
    ("camera: {tilt: [1, 2]}", r"shots\[0\]\.camera\.tilt: unknown key \(keys here: pan, pulse, zoom; `mvgen reference` lists every key\)$"),
    ("retime: flwo", r"shots\[0\]\.retime: must be one of flow, blend, nearest \(got 'flwo'\); did you mean 'flow'\?$"),
    ("xyzzy: 1", r"shots\[0\]\.xyzzy: unknown key \(keys here: bridge_prompt, camera, cast, end, end_image, id, image, length, loras, prompt, retime, seed, takes, transition; `mvgen reference` lists every key\)$"),
]  # fmt: skip


@pytest.mark.parametrize("mistake, pattern", NEAR_MISSES, ids=[m for m, _ in NEAR_MISSES])
def test_a_near_miss_gets_every_form_and_did_you_mean(mistake, pattern, project, mvgen, empty_cache):
    r = mvgen("validate", write(project / "shots.yaml", HEAD + f"shots:\n  - {{prompt: a, {mistake}}}\n"))
    assert r.code == 2, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), r


@pytest.mark.parametrize(
    "header, pattern",
    [
        ("timing: {fit: lop}", r"timing\.fit: must be one of loop, stretch, trim \(got 'lop'\); did you mean 'loop'\?$"),
        ("timing: {unit: bar}", r"timing\.unit: must be one of beats, bars, seconds, sections \(got 'bar'\); did you mean 'bars'\?$"),
        ("vidoe: {fps: 24}", r"vidoe: unknown key; did you mean `video`\?$"),
        ("xyzzy: 1", r"xyzzy: unknown key \(keys here: audio, backend, .*, video; `mvgen reference` lists every key\)$"),
        ("audio: {path: track.wav, bmp: 120}", r"audio\.bmp: unknown key; did you mean `bpm`\?$"),
        ("audio: 3", r"audio: must be a path \(`audio: track\.wav`\) or a mapping \{path, bpm, offset_s \| beats_file, beats_per_bar\} \(got 3\)$"),
        ("output: {path: x.mp4, crf: 99}", r"output\.crf: must be <= 51 \(got 99\)$"),
    ],
)  # fmt: skip
def test_near_misses_of_top_level_keys_and_values(header, pattern, project, mvgen, empty_cache):
    text = HEAD.replace("audio: track.wav\n", "") if header.startswith("audio") else HEAD
    r = mvgen("validate", write(project / "shots.yaml", text + header + "\nshots:\n" + GOOD_SHOTS))
    assert r.code == 2, r
    assert any(re.search(pattern, line) for line in r.err.splitlines()), r
