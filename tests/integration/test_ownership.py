"""mvgen never overwrites a file it did not write (issue 24): a user's file at any path a render,
a preview, a draft or an OTIO export would write stops the job before any model loads (exit 2,
the file named, the --out fix given) and stays byte for byte; mvgen's own files, marked or listed
by its manifest, are replaced as before."""

from __future__ import annotations

import json

import pytest

from mvgen.ownership import marked
from tests.conftest import drum_track, write

SHOTS = """version: 1
model: tiny
audio: track.wav
video: {width: 128, height: 96, fps: 12}
generation: {steps: 2}
timing: {fit: trim}
shots:
  - {id: a, prompt: a red car, length: 4}
"""


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    drum_track(d / "track.wav", duration_s=4.0)
    write(d / "x.yaml", SHOTS)
    return d


# (the user's file beside x.yaml, extra arguments, what mvgen would write there)
CASES = [
    ("x.json", [], "its manifest"),  # the case: a saved `mvgen beats --json`
    ("x.mp4", [], "the video"),
    ("x.html", [], "the report page"),
    ("x.contact.png", [], "the contact sheet"),
    ("x.beats.png", [], "the beat plot"),
    ("x.preview.mp4", ["--preview"], "the animatic"),
    ("x.preview.json", ["--preview"], "its manifest"),
    ("x.draft.mp4", ["--quality", "draft"], "the video"),
    ("x.draft.json", ["--quality", "draft"], "its manifest"),
    ("x.draft.html", ["--quality", "draft"], "the report page"),
    ("edit.otio", ["--otio", "{d}/edit.otio"], "the OTIO timeline"),
    ("edit_media", ["--otio", "{d}/edit.otio"], "the OTIO timeline's shots"),
]  # fmt: skip


@pytest.mark.parametrize("name, args, role", CASES, ids=[c[0] for c in CASES])
def test_a_users_file_is_never_overwritten(name, args, role, project, mvgen, empty_cache):
    target = project / name
    if name.endswith("_media"):
        target.mkdir()
        (target / "my-notes.txt").write_text("my own notes\n")
        keep = target / "my-notes.txt"
    else:
        target.write_bytes(
            b'{"tempo_bpm": 120.0, "beats_s": [0.5, 1.0]}\n' if name.endswith(".json") else b"mine"
        )
        keep = target
    before = keep.read_bytes()
    listing = sorted(p.name for p in project.iterdir())
    r = mvgen("render", project / "x.yaml", *[a.format(d=project) for a in args])
    assert r.code == 2, r
    first = r.err.splitlines()[0]
    assert first == f"mvgen: error: {target}: not written by mvgen, and " + (
        f"{'previewing' if '--preview' in args else 'rendering'} x.yaml to "
        f"{'x.preview.mp4' if '--preview' in args else 'x.draft.mp4' if 'draft' in args else 'x.mp4'}"
        f" would replace it with {role}"
    ), r
    assert "hint: give the video another name with --out NAME.mp4" in r.err
    assert keep.read_bytes() == before  # untouched
    assert sorted(p.name for p in project.iterdir()) == listing  # nothing else written either
    assert not (empty_cache / "models").exists()  # stopped before any model was built or loaded
    # `validate` says so too; the --out fix works
    if not args:
        assert mvgen("validate", project / "x.yaml").code == 2


def test_every_foreign_file_is_named_at_once(project, mvgen, empty_cache):
    for name in ("x.json", "x.html"):
        (project / name).write_text("mine\n")
    r = mvgen("validate", project / "x.yaml")
    assert r.code == 2, r
    named = [line.split(": ")[2] for line in r.err.splitlines() if line.startswith("mvgen: error: ")]
    assert named == [str(project / "x.json"), str(project / "x.html")]


def test_mvgens_own_files_are_recognised_and_replaced(project, mvgen, cache_dir):
    r = mvgen("render", project / "x.yaml", "--otio", project / "edit.otio")
    assert r.code == 0, r
    written = [project / n for n in ("x.mp4", "x.json", "x.html", "x.contact.png", "x.beats.png", "edit.otio", "edit_media")]  # fmt: skip
    assert all(marked(p) for p in written), [p.name for p in written if not marked(p)]
    # another render of the same name replaces them all
    write(project / "x.yaml", SHOTS.replace("a red car", "a blue car"))
    r = mvgen("render", project / "x.yaml", "--otio", project / "edit.otio")
    assert r.code == 0, r
    assert json.loads((project / "x.json").read_text())["shots"][0]["prompt"] == "a blue car"


def test_files_an_older_mvgen_wrote_without_marks_are_known_by_its_manifest(project, mvgen, cache_dir):
    """Before the marks, mvgen's manifest listed the report beside the video: that is enough."""
    assert mvgen("render", project / "x.yaml").code == 0
    from PIL import Image

    from mvgen.ffmpeg import run_ffmpeg

    # strip every mark, as an older mvgen wrote them
    run_ffmpeg(["-i", str(project / "x.mp4"), "-c", "copy", "-map_metadata", "-1", str(project / "old.mp4")],
               what="strip")  # fmt: skip
    (project / "old.mp4").replace(project / "x.mp4")
    for png in ("x.contact.png", "x.beats.png"):
        Image.open(project / png).convert("RGB").save(project / png)
    html = (project / "x.html").read_text()
    (project / "x.html").write_text(html.replace('<meta name="generator"', '<meta name="x-old"'))
    assert not any(marked(project / n) for n in ("x.mp4", "x.html", "x.contact.png", "x.beats.png"))
    write(project / "x.yaml", SHOTS.replace("a red car", "a green car"))
    r = mvgen("render", project / "x.yaml")
    assert r.code == 0, r
    assert all(marked(project / n) for n in ("x.mp4", "x.html", "x.contact.png", "x.beats.png"))
