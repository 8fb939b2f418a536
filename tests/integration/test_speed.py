"""Speed features, checked for what they must keep: the overlapped render writes the same video as
the sequential one; the streaming clip reader gives the clip's exact frames; old cache entries still
assemble; encoder settings reach x264; draft renders keep seeds and cuts; compile buckets keep cuts;
the step cache and attention levers reach the real transformer; MagCache measures each family's
ratios once and leaves no state behind a stopped sample; the CPU paths for 3D convolutions and the
VAE's channel norms give diffusers' results; bench_gpu runs its CPU smoke mode."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from mvgen.errors import EncodeError
from mvgen.media.clips import ClipReader, read_clip, write_clip
from mvgen.timeline import RenderPlan
from tests.conftest import write
from tests.synth import steady_beats, synth_track

REPO = Path(__file__).resolve().parents[2]

SHOTS = """version: 1
model: tiny
audio: t.wav
output: {out}
video: {{width: 128, height: 96, fps: 12}}
generation: {{steps: {steps}, seed: 3{extra}}}
timing: {{fit: trim}}
shots:
  - {{id: a, prompt: a red city, length: 2}}
  - {{id: b, prompt: a blue sea, length: 2, transition: {{crossfade: 1}}}}
  - {{id: c, prompt: a green forest, length: 3}}
  - {{id: d, prompt: a desert, length: 2, camera: {{zoom: [1.0, 1.3]}}}}
  - {{id: e, prompt: snow, length: 3}}
"""


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _shots(tmp_path: Path, name: str, out, steps: int = 3, extra: str = "") -> Path:
    return write(tmp_path / f"{name}.yaml", SHOTS.format(out=out, steps=steps, extra=extra))


def test_overlapped_render_writes_the_same_video_as_the_sequential_one(tmp_path, mvgen, cache_dir):
    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    seq = _shots(tmp_path, "seq", "seq.mp4", steps=6)
    r = mvgen("render", seq, "--no-overlap", "--log-format", "json")
    assert r.code == 0, r
    m_seq = json.loads((tmp_path / "seq.json").read_text())
    assert m_seq["generation"]["overlap"] is False
    # the same list from an empty shot cache, overlapped (the default)
    import shutil

    shutil.rmtree(cache_dir / "shots")
    ovl = _shots(tmp_path, "ovl", "ovl.mp4", steps=6)
    r = mvgen("render", ovl, "--log-format", "json")
    assert r.code == 0, r
    m_ovl = json.loads((tmp_path / "ovl.json").read_text())
    assert m_ovl["generation"]["overlap"] is True and not any(s["cached"] for s in m_ovl["shots"])
    # the encoder was working while shots were still being generated
    events = [json.loads(line) for line in r.err.splitlines() if line.startswith("{")]
    assemble = next(e for e in events if e.get("event") == "stage" and e.get("stage") == "assemble")
    already = int(assemble["message"].split("(")[1].split()[0])
    assert already > 0, assemble
    a, b = _frames(tmp_path / "seq.mp4"), _frames(tmp_path / "ovl.mp4")
    assert a.shape == b.shape and a.shape[0] == m_ovl["video"]["frames"]
    assert np.array_equal(a, b)  # same clips, same composition, same encoder settings
    assert [s["cache_key"] for s in m_ovl["shots"]] == [s["cache_key"] for s in m_seq["shots"]]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_clip_reader_gives_the_clips_frames_in_order_and_reports_a_short_clip(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (9, 24, 32, 3), dtype=np.uint8)
    path = tmp_path / "c.mkv"
    write_clip(path, frames, 16.0)
    assert np.array_equal(read_clip(path), frames)  # lossless
    reader = ClipReader(path, 9, (32, 24))
    got = [reader.get(j).copy() for j in (0, 0, 1, 3, 8, 12)]  # repeats, skips, held past the end
    reader.close()
    for g, j in zip(got, (0, 0, 1, 3, 8, 8), strict=True):
        assert np.array_equal(g, frames[j])
    with pytest.raises(ValueError):
        r = ClipReader(path, 9, (32, 24))
        try:
            r.get(4)
            r.get(2)  # backwards
        finally:
            r.close()
    short = ClipReader(path, 12, (32, 24))  # the record says 12 frames, the file has 9
    with pytest.raises(EncodeError, match="ends at frame 9 of 12"):
        short.get(11)
    short.close()


def test_old_lossless_h264_cache_entries_still_assemble(tmp_path, mvgen, cache_dir):
    """Entries written before the switch to UT Video (clip.mp4, lossless H.264) are still used."""
    from mvgen.ffmpeg import run_ffmpeg

    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    shots = _shots(tmp_path, "s", "s.mp4", steps=2)
    assert mvgen("render", shots).code == 0
    first = _frames(tmp_path / "s.mp4")
    m = json.loads((tmp_path / "s.json").read_text())
    for s in m["shots"]:
        new = next((cache_dir / "shots").glob(f"*/{s['cache_key']}/clip.mkv"))
        old = new.with_name("clip.mp4")
        run_ffmpeg(["-y", "-i", str(new), "-c:v", "libx264rgb", "-qp", "0", "-preset", "ultrafast",
                    "-pix_fmt", "rgb24", str(old)], what="old entry")  # fmt: skip
        new.unlink()
    r = mvgen("render", shots, "--log-format", "json")
    assert r.code == 0, r
    m2 = json.loads((tmp_path / "s.json").read_text())
    assert all(s["cached"] for s in m2["shots"])  # nothing regenerated
    assert np.array_equal(_frames(tmp_path / "s.mp4"), first)


def test_output_settings_reach_the_encoder(tmp_path, mvgen, cache_dir):
    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    shots = _shots(tmp_path, "s", "{path: out/x.mp4, crf: 30, preset: ultrafast, threads: 1}", steps=2)
    r = mvgen("render", shots)
    assert r.code == 0, r
    data = (tmp_path / "out" / "x.mp4").read_bytes()
    info = data[data.find(b"x264 - core") :][:2000]  # x264 writes its settings into the stream
    assert b"crf=30.0" in info and b"cabac=0" in info and b"threads=1" in info  # cabac off: ultrafast
    m = json.loads((tmp_path / "out" / "x.json").read_text())
    assert m["video"]["frames"] == len(_frames(tmp_path / "out" / "x.mp4"))


def test_a_draft_keeps_seeds_and_cuts_at_a_third_of_the_steps_and_half_the_size(tmp_path, mvgen, cache_dir):
    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    shots = _shots(tmp_path, "s", "s.mp4", steps=15, extra=", takes: 1")
    final = RenderPlan.from_json(json.loads(mvgen("plan", shots, "--json").out))
    r = mvgen("render", shots, "--quality", "draft")
    assert r.code == 0, r
    assert not (tmp_path / "s.mp4").exists()  # a draft never takes the final's name
    m = json.loads((tmp_path / "s.draft.json").read_text())
    assert m["generation"]["quality"] == "draft" and m["generation"]["steps"] == 5  # ceil(15 / 3)
    assert [(s["seed"], s["start_frame"], s["end_frame"]) for s in m["shots"]] == [
        (s.seed, s.start_frame, s.end_frame) for s in final.shots
    ]
    meta = json.loads(
        next((cache_dir / "shots").glob(f"*/{m['shots'][0]['cache_key']}/meta.json")).read_text()
    )
    # tiny renders at a quarter of the output size; a draft at half of that (rounded to its multiple)
    assert (meta["width"], meta["height"]) == (16, 16) and (final.gen_width, final.gen_height) == (32, 32)
    frames = _frames(tmp_path / "s.draft.mp4")
    assert frames.shape == (final.total_frames, 96, 128, 3)


def test_compile_buckets_lengths_but_keeps_every_cut():
    from mvgen.audio.grid import BeatGrid
    from mvgen.config import parse_shotlist_text
    from mvgen.config.presets import all_presets
    from mvgen.planner import plan_video

    beats = tuple(0.5 * i for i in range(80))
    grid = BeatGrid(120.0, 40.0, beats, beats[::4], ())
    body = "".join(f"  - {{prompt: p{i}, length: {n}}}\n" for i, n in enumerate([1, 2, 3, 5, 7, 9, 2, 4]))
    wan = all_presets()["wan2.1-t2v-1.3b"]
    plans = [
        plan_video(
            parse_shotlist_text(
                f"generation: {{compile: {c}}}\ntiming: {{fit: trim}}\nshots:\n{body}", Path("c.yaml")
            ),
            grid,
            wan,
        )  # fmt: skip
        for c in ("false", "true")
    ]
    plain, bucketed = plans
    assert [(s.start_frame, s.end_frame) for s in plain.shots] == [
        (s.start_frame, s.end_frame) for s in bucketed.shots
    ]
    buckets = {wan.valid_frames(math.ceil(wan.max_frames * q / 4)) for q in range(1, 5)}
    assert {s.num_frames for s in bucketed.shots} <= buckets  # at most 4 shapes to compile
    assert len({s.num_frames for s in plain.shots}) > len({s.num_frames for s in bucketed.shots})
    assert all(b.num_frames >= p.num_frames for p, b in zip(plain.shots, bucketed.shots, strict=True))


@pytest.fixture
def backend(cache_dir):
    """The tiny model loaded on the CPU through mvgen's local backend (closed after the test)."""
    from mvgen.config.presets import resolve_model
    from mvgen.generate.local import LocalBackend

    loaded = LocalBackend(resolve_model("tiny"), device="cpu")
    loaded.load()
    yield loaded
    loaded.close()


def _full_passes(backend) -> list[int]:
    """A list that grows by one on every transformer pass that ran all its blocks: it hooks a
    submodule of the last block (a step cache's reused pass still calls the block, not its parts)."""
    calls: list[int] = []
    backend.pipe.transformer.blocks[-1].ffn.register_forward_hook(lambda *a: calls.append(1))
    return calls


def test_step_cache_and_attention_levers_reach_the_transformer(backend):
    """First Block Cache skips the later blocks on steps whose first block barely changed; a kernel
    that is not installed falls back to PyTorch's with a notice, never an error."""
    from mvgen.generate.base import ShotRequest

    calls = _full_passes(backend)
    base = ShotRequest("x", "a red city", "", 7, 32, 32, 5, 6, 5.0, 32, fps=16.0)
    notes: list[str] = []

    def run(**levers) -> np.ndarray:
        calls.clear()
        from dataclasses import replace

        return backend.generate(replace(base, **levers), lambda i, n: None, notify=notes.append)

    plain = run()
    plain_calls = len(calls)
    cached = run(step_cache="fbc", step_cache_threshold=1.0)
    assert len(calls) < plain_calls  # later blocks skipped on reused steps
    again = run()  # the cache is switched off again for a request without it
    assert len(calls) == plain_calls and np.array_equal(again, plain)
    assert not np.array_equal(cached, plain)
    run(attention="flash")
    assert any("flash_attn" in n for n in notes), notes


def test_magcache_measures_the_models_ratios_once_and_skips_steps(backend, cache_dir):
    """MagCache's ratios are measured on the first request (reported, kept in the cache folder) and
    reused by later ones; reused steps skip the transformer's blocks; a sample that stopped part-way
    leaves no state behind, so the same request gives the same picture afterwards."""
    from dataclasses import replace

    from mvgen.errors import Interrupted
    from mvgen.generate.base import ShotRequest

    calls = _full_passes(backend)
    base = ShotRequest("x", "a red city", "", 7, 32, 32, 9, 8, 2.0, 32, fps=16.0)
    notes: list[str] = []

    def run(on_step=lambda i, n: None, **levers) -> np.ndarray:
        calls.clear()
        return backend.generate(replace(base, **levers), on_step, notify=notes.append)

    plain = run()
    plain_calls = len(calls)  # 8 steps x 2 (classifier-free guidance)
    first = run(step_cache="magcache", step_cache_threshold=1.0)
    assert [n for n in notes if n.startswith("MagCache: measuring tiny at 8 steps, 32x32")], notes
    kept = list((cache_dir / "magcache").glob("*.json"))
    assert len(kept) == 1
    ratios = json.loads(kept[0].read_text())["ratios"]
    assert len(ratios) == 8 and ratios[0] == 1.0 and all(0.2 < r < 5 for r in ratios)
    notes.clear()
    cached = run(step_cache="magcache", step_cache_threshold=1.0)
    assert not notes  # measured once
    assert len(calls) < plain_calls  # the blocks after the first skipped on reused steps
    assert np.array_equal(cached, first) and not np.array_equal(cached, plain)
    assert np.abs(cached.astype(np.int16) - plain).mean() < 25  # close to the uncached picture

    def stop_at_3(i, n):
        if i == 3:
            raise Interrupted("stop")

    with pytest.raises(Interrupted):
        run(stop_at_3, step_cache="magcache", step_cache_threshold=1.0, prompt="a blue sea")
    assert np.array_equal(run(step_cache="magcache", step_cache_threshold=1.0), first)


@pytest.mark.parametrize("model", ["tiny-ltx", "tiny-cogvideox", "tiny-hunyuan"])
def test_magcache_runs_on_every_family(cache_dir, model):
    """LTX (one pass a step, guidance batched), CogVideoX and HunyuanVideo (text and video tokens
    in its single-stream blocks) get their ratios measured, one per step, and reuse steps."""
    from dataclasses import replace

    from mvgen.config.presets import resolve_model
    from mvgen.generate.base import ShotRequest
    from mvgen.generate.local import LocalBackend

    ref = resolve_model(model)
    p = ref.preset
    backend = LocalBackend(ref, device="cpu")
    backend.load()
    size = 2 * p.size_multiple
    base = ShotRequest("x", "a red city", "", 7, size, size, p.valid_frames(9), 8, p.guidance,
                       p.max_sequence_length, fps=p.fps)  # fmt: skip
    plain = backend.generate(base, lambda i, n: None)
    cached = backend.generate(
        replace(base, step_cache="magcache", step_cache_threshold=1.0), lambda i, n: None
    )
    ratios = json.loads(next((cache_dir / "magcache").glob("*.json")).read_text())["ratios"]
    assert len(ratios) == 8 and ratios[0] == 1.0
    assert cached.shape == plain.shape and not np.array_equal(cached, plain)
    backend.close()


def test_a_magcache_render_measures_once_per_pipeline_and_keys_its_shots_apart(tmp_path, mvgen, cache_dir):
    """`generation: {cache: magcache}`: the render measures the text-to-video model and its
    image-to-video sibling (a chained shot) once each, its shots get keys of their own (the default
    threshold, 0.06, in them), and a re-render finds every shot cached without measuring again."""
    synth_track(tmp_path / "t.wav", steady_beats(120, 7), duration_s=7.0)
    body = SHOTS.replace("transition: {{crossfade: 1}}", "transition: chain")
    shots = write(tmp_path / "m.yaml", body.format(out="m.mp4", steps=8, extra=", cache: magcache"))
    plain = write(tmp_path / "p.yaml", body.format(out="p.mp4", steps=8, extra=""))
    plan = json.loads(mvgen("plan", shots, "--json").out)
    assert (plan["step_cache"], plan["step_cache_threshold"]) == ("magcache", 0.06)
    r = mvgen("render", shots, "--log-format", "json")
    assert r.code == 0, r
    events = [json.loads(line) for line in r.err.splitlines() if line.startswith("{")]
    measured = [e["message"] for e in events if "MagCache: measuring" in e.get("message", "")]
    assert len(measured) == 2 and "(image-to-video)" in measured[1], measured
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["generation"]["cache"] == "magcache" and not any(s["cached"] for s in m["shots"])
    assert len(_frames(tmp_path / "m.mp4")) == m["video"]["frames"]
    assert mvgen("render", plain).code == 0
    keys = [s["cache_key"] for s in json.loads((tmp_path / "p.json").read_text())["shots"]]
    assert not set(keys) & {s["cache_key"] for s in m["shots"]}
    r = mvgen("render", shots, "--log-format", "json")
    assert r.code == 0 and "MagCache: measuring" not in r.err
    assert all(s["cached"] for s in json.loads((tmp_path / "m.json").read_text())["shots"])


def test_magcache_ratios_that_cannot_be_kept_are_used_and_measured_again(backend, cache_dir):
    from mvgen.generate.base import ShotRequest

    (cache_dir / "magcache").write_text("not a folder")  # the cache cannot hold the ratios
    request = ShotRequest("x", "a red city", "", 7, 32, 32, 9, 8, 2.0, 32, fps=16.0, step_cache="magcache")
    notes: list[str] = []
    first = backend.generate(request, lambda i, n: None, notify=notes.append)
    assert any("could not keep the measured ratios" in n for n in notes), notes
    notes.clear()
    assert np.array_equal(backend.generate(request, lambda i, n: None, notify=notes.append), first)
    assert any(n.startswith("MagCache: measuring") for n in notes), notes  # measured again, same ratios


def test_magcache_refuses_a_model_with_two_transformers(backend, cache_dir):
    """Wan 2.2 A14B hands its steps from a high-noise to a low-noise transformer: MagCache, which
    follows one transformer through every step, is refused with a hint before anything is measured.
    (A14B cannot run here: its second transformer is stood in for by a copy of tiny's.)"""
    import copy

    from mvgen.errors import GenerationError
    from mvgen.generate.base import ShotRequest

    backend.pipe.register_modules(transformer_2=copy.deepcopy(backend.pipe.transformer))
    request = ShotRequest("x", "a red city", "", 7, 32, 32, 9, 8, 2.0, 32, fps=16.0, step_cache="magcache")
    with pytest.raises(GenerationError, match="two|another part-way") as e:
        backend.generate(request, lambda i, n: None)
    assert "cache: fbc" in (e.value.hint or "") and not (cache_dir / "magcache").exists()


def test_compile_with_a_step_cache_renders(cache_dir):
    """`compile: true` with `cache: fbc` (or magcache) used to fail the shot: torch.compile in one
    graph cannot trace the cache's hooks. The blocks now compile in pieces under a step cache (FBC
    keeps compiled graphs; MagCache's hooks run outside compile, which the user is told), and the
    pictures are the uncompiled ones within rounding."""
    from dataclasses import replace

    import torch._dynamo.utils

    from mvgen.config.presets import resolve_model
    from mvgen.generate.base import ShotRequest
    from mvgen.generate.local import LocalBackend

    request = ShotRequest("x", "a red city", "", 7, 32, 32, 9, 6, 2.0, 32, fps=16.0, step_cache="fbc",
                          step_cache_threshold=0.5)  # fmt: skip
    frames = {}
    for compiled in (False, True):
        backend = LocalBackend(resolve_model("tiny"), device="cpu")
        backend.load()
        torch._dynamo.utils.counters.clear()
        frames[compiled] = backend.generate(replace(request, compile=compiled), lambda i, n: None)
        if compiled:
            assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # something was compiled
            notes: list[str] = []
            backend.generate(replace(request, compile=True, step_cache="magcache"), lambda i, n: None,
                             notify=notes.append)  # fmt: skip
            assert any("compiling gains nothing here" in n for n in notes), notes
        backend.close()
    assert np.abs(frames[True].astype(np.int16) - frames[False]).max() <= 2


def test_magcache_ratios_match_diffusers_own_calibration(backend, capsys):
    """mvgen's measurement gives the ratios diffusers' MagCache calibration mode prints for the same
    sample (the ratio of each step's mean per-token residual norm to the previous step's)."""
    import torch
    from diffusers.hooks import MagCacheConfig

    from mvgen.generate import magcache
    from mvgen.generate.base import ShotRequest

    pipe = backend.pipe
    request = ShotRequest("x", "a green forest", "", 5, 32, 32, 9, 6, 2.0, 32, fps=16.0)

    def sample(on_step) -> None:
        with torch.inference_mode():
            backend._call(pipe, request, on_step)

    ours = magcache.measure(pipe.transformer, lambda end: sample(lambda done, total: end()))
    pipe.transformer.enable_cache(MagCacheConfig(calibrate=True, num_inference_steps=6))
    capsys.readouterr()
    sample(lambda done, total: None)
    pipe.transformer.disable_cache()
    printed = capsys.readouterr().out
    lists = [
        json.loads(line) for line in printed.splitlines() if line.startswith("[") and "MagCache" not in line
    ]
    assert lists, printed  # one per cache context: with the prompt (first), without it
    assert ours == pytest.approx(lists[0], rel=1e-4)


def test_cpu_3d_convolutions_run_in_onednn_with_pytorchs_result(backend):
    """On the CPU every 3D convolution of the loaded pipeline goes through oneDNN (PyTorch's
    heuristic sends a narrow batch-of-one video VAE to its slow reference kernel), and the VAE
    decodes what PyTorch's own kernel decodes."""
    import torch

    vae = backend.pipe.vae
    convs = [m for m in vae.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs and all("_conv_forward" in vars(m) for m in convs)
    latents = torch.randn(1, 16, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), torch.profiler.profile() as prof:
        routed = vae.decode(latents).sample
    ops = {e.key for e in prof.key_averages()}
    assert "aten::mkldnn_convolution" in ops and "aten::slow_conv3d_forward" not in ops
    for m in convs:
        del m._conv_forward  # back to PyTorch's own choice of kernel
    with torch.no_grad():
        own = vae.decode(latents).sample
    assert torch.allclose(routed, own, atol=1e-4)


def test_cpu_channel_norms_skip_the_slow_vector_norm_with_diffusers_result(backend):
    """On the CPU the Wan VAE's channel RMS norms sum squares instead of calling PyTorch's vector
    norm over the channels (slow when it is not the innermost dimension), and the VAE decodes what
    diffusers' own norm decodes."""
    import torch

    vae = backend.pipe.vae
    norms = [m for m in vae.modules() if type(m).__name__ == "WanRMS_norm"]
    assert norms and all("forward" in vars(m) for m in norms)
    latents = torch.randn(1, 16, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), torch.profiler.profile() as prof:
        fast = vae.decode(latents).sample
    assert "aten::linalg_vector_norm" not in {e.key for e in prof.key_averages()}
    for m in norms:
        del m.forward  # diffusers' own forward
    with torch.no_grad(), torch.profiler.profile() as prof:
        own = vae.decode(latents).sample
    assert "aten::linalg_vector_norm" in {e.key for e in prof.key_averages()}  # what it replaces
    assert torch.allclose(fast, own, atol=1e-4)


def test_bench_gpu_smoke_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_gpu.py"), "--reduced", "--preset", "wan2.1-t2v-1.3b",
         "--levers", "fp32", "bf16", "compile", "--steps", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {row["lever"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["fp32"]["dtype"] == "float32" and rows["bf16"]["dtype"] == "bfloat16"
    assert "CUDA" in rows["compile"]["skipped"]
    for row in (rows["fp32"], rows["bf16"]):
        assert row["step_s"] > 0 and row["decode_s"] > 0
        expect = (row["steps"] * row["step_s"] + row["decode_s"]) / (row["frames"] / row["fps"])
        assert row["gpu_s_per_output_s"] == pytest.approx(expect, rel=0.01)


def test_bench_gpu_covers_every_2026_family_and_runs_one_on_cpu(tmp_path):
    """A lent GPU measures every new family in one run: each has a full-size architecture there, and
    the one with the most unusual call (Kandinsky 5: channels last, start-image channels, RoPE
    positions) runs reduced here."""
    import importlib.util

    from mvgen.config.presets import all_presets

    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "scripts" / "bench_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    covered = {all_presets()[name].family for name in bench.ARCH}
    assert {"ltx2", "hunyuan15", "skyreels", "kandinsky", "anyflow", "helios", "wan", "ltx"} <= covered
    out = tmp_path / "k.json"
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_gpu.py"), "--reduced", "--preset", "kandinsky5-t2v-lite-5s",
         "--levers", "bf16", "--steps", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["dtype"] == "bfloat16" and row["step_s"] > 0 and row["decode_s"] > 0
