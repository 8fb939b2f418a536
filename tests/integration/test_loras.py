"""LoRAs on the tiny model, with eyes: two real LoRAs made by scripts/train_tiny_lora.py and shipped
in tests/data/loras ("sunset" pulls every colour towards orange, "night" towards deep blue), loaded
through diffusers/PEFT exactly as a user's would be; and the script itself, on a few steps."""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import REPO, write
from tests.synth import steady_beats, synth_track

sys.path.insert(0, str(REPO / "scripts"))
import train_tiny_lora  # noqa: E402


@pytest.fixture(scope="session")
def looks() -> dict[str, Path]:
    """The two shipped LoRAs (`python scripts/train_tiny_lora.py --look LOOK`, about half a minute each)."""
    return {look: REPO / "tests" / "data" / "loras" / f"{look}.safetensors" for look in ("sunset", "night")}


def test_the_training_script_writes_a_lora_in_diffusers_layout(tmp_path):
    """A few steps on a few clips: the file loads as a LoRA for every adapted layer of the tiny
    transformer (the shipped ones came from the same code with its defaults)."""
    from mvgen.config.loras import safetensors_shapes

    out = train_tiny_lora.train(tmp_path / "quick.safetensors", steps=3, clips=8, log=lambda m: None)
    keys = safetensors_shapes(out)
    assert keys == safetensors_shapes(REPO / "tests" / "data" / "loras" / "sunset.safetensors")
    assert all(k.startswith("transformer.blocks.") and (".lora_A." in k or ".lora_B." in k) for k in keys)


HEAD = """version: 1
model: tiny
audio: {{path: t.wav, bpm: 120}}
output: {out}
video: {{width: 208, height: 128, fps: 8}}
generation: {{seed: 3, steps: 8}}
timing: {{fit: trim}}
shots:
"""


def _project(tmp_path: Path, looks: dict[str, Path], shots: str, out: str = "out.mp4") -> Path:
    for path in looks.values():
        target = tmp_path / path.name
        if not target.exists():
            target.symlink_to(path)
    if not (tmp_path / "t.wav").exists():
        synth_track(tmp_path / "t.wav", steady_beats(120, 12), duration_s=12.0)
    return write(tmp_path / f"{Path(out).stem}.yaml", HEAD.format(out=out) + shots)


def _slot_colours(video: Path, manifest: dict) -> list[np.ndarray]:
    """Each slot's mean RGB over the frames it shows."""
    with av.open(str(video)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float64)
    return [frames[s["start_frame"] : s["end_frame"]].mean(axis=(0, 1, 2)) for s in manifest["shots"]]


def _clip(cache: Path, key: str) -> np.ndarray:
    from mvgen.media.clips import read_clip

    return read_clip(next((cache / "shots").glob(f"**/{key}*/clip.*")))


SAME = 'prompt: "blue embers, holding still", seed: 3, length: 4'


def test_weight_moves_the_colour_monotonically_and_a_second_lora_leaves_other_shots_untouched(
    tmp_path, mvgen, cache_dir, monkeypatch, looks
):
    shots = _project(tmp_path, looks, f"""  - {{id: w0, {SAME}}}
  - {{id: w05, {SAME}, loras: [{{path: sunset.safetensors, weight: 0.5}}]}}
  - {{id: w1, {SAME}, loras: [{{path: sunset.safetensors, weight: 1.0}}]}}
  - {{id: night, {SAME}, loras: [{{path: night.safetensors}}]}}
""")  # fmt: skip
    r = mvgen("render", shots)
    assert r.code == 0, r
    m = json.loads((tmp_path / "out.json").read_text())
    warm = [c[0] - c[2] for c in _slot_colours(tmp_path / "out.mp4", m)]  # red minus blue
    assert warm[0] < warm[1] < warm[2], warm  # the same prompt and seed, warmer with the weight
    assert warm[2] - warm[0] > 100  # at weight 1 the blue embers have turned orange
    rows = {s["id"]: s for s in m["shots"]}
    assert rows["w0"]["loras"] == []
    assert [(Path(u["path"]).name, u["weight"]) for u in rows["w05"]["loras"]] == [
        ("sunset.safetensors", 0.5)
    ]
    assert "sunset.safetensors 0.5" in (tmp_path / "out.html").read_text()

    # The same shots without the night LoRA, in a cache of their own: made again, the frames of the
    # other shots are exactly the same (the night adapter, loaded beside them, was off for them).
    other = tmp_path / "cache2"
    other.mkdir()
    (other / "models").symlink_to(cache_dir / "models")
    monkeypatch.setenv("MVGEN_CACHE_DIR", str(other))
    alone = _project(tmp_path, looks, f"""  - {{id: w0, {SAME}}}
  - {{id: w1, {SAME}, loras: [{{path: sunset.safetensors, weight: 1.0}}]}}
""", out="alone.mp4")  # fmt: skip
    assert mvgen("render", alone).code == 0
    m2 = {s["id"]: s for s in json.loads((tmp_path / "alone.json").read_text())["shots"]}
    for sid in ("w0", "w1"):
        assert m2[sid]["cache_key"] == rows[sid]["cache_key"] and not m2[sid]["cached"]
        assert np.array_equal(_clip(other, m2[sid]["cache_key"]), _clip(cache_dir, rows[sid]["cache_key"]))


def test_changing_one_weight_remakes_exactly_the_shots_that_use_it(tmp_path, mvgen, cache_dir, looks):
    body = """  - {{id: a, prompt: "red embers, holding still", length: 2}}
  - {{id: b, prompt: "green field, panning left", length: 2, loras: [{{path: sunset.safetensors, weight: {w}}}]}}
  - {{id: c, prompt: "cyan sea, panning right", length: 2, loras: [{{path: night.safetensors}}]}}
"""
    shots = _project(tmp_path, looks, body.format(w=0.5))
    assert mvgen("render", shots).code == 0
    _project(tmp_path, looks, body.format(w=0.8))
    r = mvgen("render", shots, "--json")
    assert r.code == 0, r
    m = json.loads((tmp_path / "out.json").read_text())
    assert [s["id"] for s in m["shots"] if not s["cached"]] == ["b"]


def test_six_shots_with_three_lora_sets_load_the_model_once(tmp_path, mvgen, cache_dir, looks, monkeypatch):
    """Spies around the real calls (they still run): one pipeline load, each LoRA file loaded once."""
    from mvgen.generate import loras
    from mvgen.generate.local import LocalBackend

    calls: dict[str, int] = {"pipeline": 0, "lora": 0}
    load_pipeline, load_lora = LocalBackend._load_pipeline, loras.LoraSwitch._load

    def count_pipeline(self, *a, **k):
        calls["pipeline"] += 1
        return load_pipeline(self, *a, **k)

    def count_lora(self, *a, **k):
        calls["lora"] += 1
        return load_lora(self, *a, **k)

    monkeypatch.setattr(LocalBackend, "_load_pipeline", count_pipeline)
    monkeypatch.setattr(loras.LoraSwitch, "_load", count_lora)
    sets = ["", "loras: [{path: sunset.safetensors}]", "loras: [{path: sunset.safetensors, weight: 0.5}, {path: night.safetensors}]"]  # fmt: skip
    body = "".join(
        f'  - {{id: s{i}, prompt: "white light, holding still", length: 1, {sets[i % 3]}}}\n'
        for i in range(6)
    )
    r = mvgen("render", _project(tmp_path, looks, body.replace(", }", "}")))
    assert r.code == 0, r
    assert calls == {"pipeline": 1, "lora": 2}
    m = json.loads((tmp_path / "out.json").read_text())
    assert [len(s["loras"]) for s in m["shots"]] == [0, 1, 2, 0, 1, 2]
    assert m["totals"]["generated"] == 6


def test_a_chained_shot_gets_the_loras_meant_for_the_image_to_video_sibling(
    tmp_path, mvgen, cache_dir, looks
):
    """Two chains from the same blue shot: the LoRA meant for both pipelines warms the chained
    shot (the image-to-video sibling has the same layers); one meant for text-to-video only does not."""
    shots = _project(tmp_path, looks, """  - {id: a, prompt: "blue embers, holding still", seed: 3, length: 4}
  - {id: b, prompt: "blue embers, holding still", seed: 4, length: 4, transition: chain, loras: [{path: sunset.safetensors, applies_to: both}]}
  - {id: c, prompt: "blue embers, holding still", seed: 3, length: 4}
  - {id: d, prompt: "blue embers, holding still", seed: 4, length: 4, transition: chain, loras: [{path: sunset.safetensors, applies_to: t2v}]}
  - {id: e, prompt: "blue embers, holding still", seed: 3, length: 4}
  - {id: f, prompt: "blue embers, holding still", seed: 4, length: 4, transition: chain}
""")  # fmt: skip
    r = mvgen("render", shots)
    assert r.code == 0, r
    m = json.loads((tmp_path / "out.json").read_text())
    assert [len(s["loras"]) for s in m["shots"]] == [0, 1, 0, 0, 0, 0]  # d's LoRA is not for its pipeline
    rows = {s["id"]: s for s in m["shots"]}
    assert rows["d"]["cache_key"] == rows["f"]["cache_key"]  # d is exactly the chain without a LoRA
    with av.open(str(tmp_path / "out.mp4")) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float64)

    def late_warmth(sid: str) -> float:  # red minus blue over the second half of the slot
        s = rows[sid]
        mid = (s["start_frame"] + s["end_frame"]) // 2
        rgb = frames[mid : s["end_frame"]].mean(axis=(0, 1, 2))
        return float(rgb[0] - rgb[2])

    assert late_warmth("b") > late_warmth("f") + 30, (late_warmth("b"), late_warmth("f"))


def test_a_speed_loras_steps_set_its_shots_steps_in_the_plan(tmp_path, mvgen, cache_dir, looks):
    shots = _project(tmp_path, looks, """  - {id: a, prompt: "red embers", length: 4}
  - {id: b, prompt: "red embers", length: 4, loras: [{path: sunset.safetensors, steps: 2, guidance: 1.0}]}
""")  # fmt: skip
    r = mvgen("plan", shots, "--json")
    assert r.code == 0, r
    rows = json.loads(r.out)["shots"]
    assert (rows[0]["steps"], rows[1]["steps"], rows[1]["guidance"]) == (0, 2, 1.0)  # 0: the plan's (8)
    from mvgen import api
    from mvgen.estimate import work_units

    plan = api.plan_video(api.load_project(shots, require_weights=False))
    a, b = plan.shots  # the GPU-time estimates count a shot's own steps
    assert work_units(plan, b) == pytest.approx(work_units(plan, a) * 2 / 8)


def _fake_lora(path: Path, tensors: dict[str, tuple[int, ...]]) -> Path:
    """A safetensors file with these tensors (zeros): its header is what the checks read."""
    header, offset, blobs = {}, 0, []
    for name, shape in tensors.items():
        n = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        blobs.append(bytes(n))
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    return path


@pytest.mark.parametrize(
    "setup, entry, message",
    [
        (None, "{path: missing.safetensors}", r"missing\.safetensors: LoRA file not found"),
        ("bin", "{path: old.bin}", r"old\.bin is a pickled checkpoint, which mvgen refuses to load"),
        ("text", "{path: notes.safetensors}", r"notes\.safetensors is not a \.safetensors file"),
        ("nolora", "{path: plain.safetensors}", r"plain\.safetensors holds no LoRA weights"),
        ("family", "{path: family.safetensors}", r"does not fit: it adapts 'single_transformer_blocks\.0\.attn\.to_q', which tiny's transformer does not have \(a LoRA for another model family\?\)"),
        ("size", "{path: size.safetensors}", r"does not fit: it adapts 'blocks\.0\.attn1\.to_q' as 4 -> 999 features, but tiny's is \d+ -> \d+ \(a LoRA for another size"),
        (None, "{path: x.safetensors, weight: 3}", r"loras\[0\]\.weight: must be <= 2"),
        (None, "{path: x.safetensors, wieght: 1}", r"loras\[0\]\.wieght: unknown key; did you mean `weight`\?"),
    ],
)  # fmt: skip
def test_a_bad_lora_is_refused_before_any_model_loads(setup, entry, message, tmp_path, mvgen, cache_dir):
    files = {
        "bin": lambda: (tmp_path / "old.bin").write_bytes(b"\x80\x04pickle"),
        "text": lambda: (tmp_path / "notes.safetensors").write_text("not weights"),
        "nolora": lambda: _fake_lora(tmp_path / "plain.safetensors", {"blocks.0.attn1.to_q.weight": (4, 4)}),
        "family": lambda: _fake_lora(tmp_path / "family.safetensors", {
            "transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": (4, 64),
            "transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight": (64, 4)}),
        "size": lambda: _fake_lora(tmp_path / "size.safetensors", {
            "transformer.blocks.0.attn1.to_q.lora_A.weight": (4, 4),
            "transformer.blocks.0.attn1.to_q.lora_B.weight": (999, 4)}),
    }  # fmt: skip
    if setup:
        files[setup]()
    synth_track(tmp_path / "t.wav", steady_beats(120, 4), duration_s=4.0)
    shots = write(
        tmp_path / "s.yaml",
        HEAD.format(out="out.mp4") + f"  - {{prompt: red, length: 4}}\nloras: [{entry}]\n",
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    r = mvgen("render", shots)
    assert r.code == 2, r
    lines = r.err.strip().splitlines()
    assert len([x for x in lines if x.startswith("mvgen: error:")]) == 1, r.err
    assert lines[0].startswith(f"mvgen: error: {shots}:"), r.err
    import re

    assert re.search(message, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_a_lora_the_loader_cannot_use_is_an_error_naming_it(tmp_path, mvgen, cache_dir, looks):
    """A layout the fit check cannot read (kohya-style keys for layers tiny lacks) is refused when it
    loads: exit 2, the file named, not a silent no-op."""
    _fake_lora(tmp_path / "odd.safetensors", {"lora_unet_elsewhere.lora_down.weight": (4, 16),
                                             "lora_unet_elsewhere.lora_up.weight": (16, 4)})  # fmt: skip
    shots = _project(
        tmp_path, looks, '  - {prompt: "blue embers", length: 2, loras: [{path: odd.safetensors}]}\n'
    )
    r = mvgen("render", shots)
    assert r.code == 2, r
    assert "mvgen: error: LoRA odd.safetensors: does not load into tiny" in r.err
    assert not (tmp_path / "out.mp4").exists()


def test_a_fused_set_paints_what_the_adapters_paint(cache_dir, looks):
    """The backend fuses a set every shot shares: the same frames as through the adapter layers
    (within rounding), and a shot without LoRAs after it is back to the model's own picture."""
    from mvgen.config.presets import resolve_model
    from mvgen.generate.base import ShotRequest
    from mvgen.generate.local import LocalBackend
    from mvgen.timeline import LoraUse

    gen = LocalBackend(resolve_model("tiny"), device="cpu")
    sunset = LoraUse("lora_sunset", str(looks["sunset"]), "sunset", 1.0)

    def shot(loras: tuple, fuse: bool) -> np.ndarray:
        request = ShotRequest(shot_id="a", prompt="blue embers", negative="", seed=3, width=208, height=128,
                              num_frames=9, steps=4, guidance=5.0, max_sequence_length=64, fps=8.0, loras=loras,
                              fuse_loras=fuse)  # fmt: skip
        return gen.generate(request, lambda i, n: None).astype(np.int16)

    plain = shot((), False)
    fused, unfused, after = shot((sunset,), True), shot((sunset,), False), shot((), False)
    assert np.abs(fused - unfused).max() <= 1
    assert (fused[..., 0] - fused[..., 2]).mean() > (plain[..., 0] - plain[..., 2]).mean() + 100
    assert np.abs(after - plain).max() <= 1
    gen.close()


def test_a_hub_lora_comes_from_the_local_hub_cache_or_is_named_missing(
    tmp_path, mvgen, cache_dir, looks, monkeypatch
):
    """`path: owner/repo` + `weight_name:` reads the Hugging Face cache's layout (nothing is fetched):
    found there it renders; absent, exit 4 with the command that fetches it."""
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    entry = '  - {prompt: "blue embers", length: 2, loras: [{path: someone/sunset-lora, weight_name: sunset.safetensors}]}\n'
    shots = _project(tmp_path, looks, entry)
    r = mvgen("render", shots)
    assert r.code == 4, r
    assert "someone/sunset-lora/sunset.safetensors is not in the local Hugging Face cache" in r.err
    assert "huggingface-cli download someone/sunset-lora sunset.safetensors" in r.err

    repo = tmp_path / "hub" / "models--someone--sunset-lora"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "sunset.safetensors").symlink_to(looks["sunset"])
    r = mvgen("render", shots)
    assert r.code == 0, r
    m = json.loads((tmp_path / "out.json").read_text())
    assert m["shots"][0]["loras"][0]["sha256"] == hashlib.sha256(looks["sunset"].read_bytes()).hexdigest()


def test_a_shot_can_drop_the_videos_loras_and_takes_share_their_shots_loras(
    tmp_path, mvgen, cache_dir, looks
):
    body = """  - {id: a, prompt: "blue embers, holding still", length: 4, takes: 2}
  - {id: b, prompt: "blue embers, holding still", length: 4, loras: {inherit: false}}
  - {id: c, prompt: "blue embers, holding still", length: 4, loras: {inherit: false, use: [{path: night.safetensors, weight: 0.5}]}}
"""  # fmt: skip
    text = (
        _project(tmp_path, looks, body)
        .read_text()
        .replace("shots:\n", "loras: [{path: sunset.safetensors}]\nshots:\n")
    )
    shots = write(tmp_path / "out.yaml", text)
    r = mvgen("render", shots)
    assert r.code == 0, r
    m = json.loads((tmp_path / "out.json").read_text())
    a, b, c = m["shots"]
    assert [[(Path(u["path"]).name, u["weight"]) for u in s["loras"]] for s in (a, b, c)] == [
        [("sunset.safetensors", 1.0)], [], [("night.safetensors", 0.5)]]  # fmt: skip
    assert len(a["takes"]) == 2  # both takes ran with the shot's LoRA: each is warm
    warm = []
    for t in a["takes"]:
        clip = _clip(cache_dir, t["cache_key"]).astype(np.float64)
        warm.append(clip[..., 0].mean() - clip[..., 2].mean())
    plain = _clip(cache_dir, b["cache_key"]).astype(np.float64)
    assert min(warm) > plain[..., 0].mean() - plain[..., 2].mean() + 100, warm


def test_loras_pull_fetches_hub_loras_and_leaves_local_ones(tmp_path, mvgen, cache_dir, looks, monkeypatch):
    """Offline here (HF_HUB_OFFLINE=1): a hub LoRA cannot be fetched, exit 4 naming it; a shot list
    with local files only has nothing to download."""
    shots = _project(tmp_path, looks, '  - {prompt: "red", length: 2, loras: [{path: sunset.safetensors}]}\n')
    r = mvgen("loras", "pull", shots)
    assert r.code == 0 and r.out.strip() == "sunset.safetensors: a local file, nothing to download", r
    hub = '  - {prompt: "red", length: 2, loras: [{path: someone/sunset-lora, weight_name: sunset.safetensors}]}\n'
    r = mvgen("loras", "pull", _project(tmp_path, looks, hub))
    assert r.code == 4, r
    assert "someone/sunset-lora/sunset.safetensors: cannot download" in r.err


def test_a_long_shots_segments_all_run_with_its_loras(tmp_path, mvgen, cache_dir, looks):
    """Six seconds at tiny's 8 fps is more than one call (33 frames): the shot is made as chained
    segments, each with the shot's LoRA (the later ones on the image-to-video sibling), all warm."""
    shots = _project(tmp_path, looks, '  - {id: long, prompt: "blue embers, holding still", length: 12, loras: [{path: sunset.safetensors}]}\n')  # fmt: skip
    r = mvgen("render", shots)
    assert r.code == 0, r
    m = json.loads((tmp_path / "out.json").read_text())
    assert [s["segment"] for s in m["shots"]] == [0, 1]
    assert all(len(s["loras"]) == 1 for s in m["shots"])
    assert all(c[0] - c[2] > 100 for c in _slot_colours(tmp_path / "out.mp4", m))  # orange, not blue
