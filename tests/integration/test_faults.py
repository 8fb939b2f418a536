"""Faults a GPU render meets overnight. A CUDA out-of-memory cannot happen on this CPU machine, so
it is injected with a test double (torch.OutOfMemoryError raised from the real VAE or transformer);
everything around it is the real pipeline."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel

from mvgen import api
from mvgen.errors import GenerationError
from tests.conftest import drum_track, write

SHOTS = """model: tiny
audio: t.wav
video: {width: 64, height: 64, fps: 12}
generation: {steps: 2}
timing: {fit: trim}
shots:
  - {id: one, prompt: "a red car", length: 4}
  - {id: two, prompt: "a blue sea", length: 4}
"""


@pytest.fixture
def project(tmp_path):
    drum_track(tmp_path / "t.wav", duration_s=6.0)
    write(tmp_path / "s.yaml", SHOTS)
    return tmp_path


@pytest.fixture
def forward_calls(monkeypatch):
    """Counts real transformer forward passes (sampling), without changing them."""
    calls = []
    real = WanTransformer3DModel.forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(WanTransformer3DModel, "forward", counting)
    return calls


def oom_on_calls(monkeypatch, fails):
    """The double: the n-th transformer forward pass (1-based) raises a CUDA out-of-memory when
    ``fails(n)``; the others run the current forward. Returns that forward, to restore it."""
    current = WanTransformer3DModel.forward
    count = {"n": 0}

    def forward(self, *args, **kwargs):
        count["n"] += 1
        if fails(count["n"]):
            raise torch.OutOfMemoryError("CUDA out of memory")
        return current(self, *args, **kwargs)

    monkeypatch.setattr(WanTransformer3DModel, "forward", forward)
    return current


def events_of(kind, events):
    return [e for e in events if e.event == kind]


def test_oom_in_decode_retries_the_decode_with_tiling_without_resampling(
    project, cache_dir, monkeypatch, forward_calls
):
    real_decode = AutoencoderKLWan.decode
    decodes = []

    def decode_needing_tiling(self, *args, **kwargs):
        decodes.append(self.use_tiling)
        if not self.use_tiling:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_decode(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderKLWan, "decode", decode_needing_tiling)
    events = []
    result = api.render_video(project / "s.yaml", progress=events.append)
    assert result.generated == 2
    # 2 steps x 2 (classifier-free guidance) forward passes per shot: sampling ran once per shot
    assert len(forward_calls) == 2 * 2 * 2
    assert decodes == [False, True, True]  # one failed decode, retried tiled; tiling then stays on
    warnings = [e.message for e in events_of("warning", events)]
    assert any("out of memory in the VAE decode: retrying the decode with tiling" in w for w in warnings)
    m = json.loads(result.manifest_path.read_text())
    assert [s["cached"] for s in m["shots"]] == [False, False]


def test_oom_in_sampling_is_retried_once_with_lower_memory_settings(
    project, cache_dir, monkeypatch, forward_calls
):
    oom_on_calls(monkeypatch, lambda n: n == 1)
    events = []
    result = api.render_video(project / "s.yaml", progress=events.append)
    assert result.generated == 2
    assert any("retrying with VAE tiling" in e.message for e in events_of("warning", events))


def test_oom_twice_is_a_clear_generation_error(project, cache_dir, monkeypatch):
    oom_on_calls(monkeypatch, lambda n: True)
    with pytest.raises(GenerationError) as e:
        api.render_video(project / "s.yaml")
    assert "shot 'one': out of memory" in e.value.message and "smaller video size" in e.value.hint
    assert not (project / "s.mp4").exists()


def test_a_crash_in_the_decode_resumes_from_the_saved_latents(project, cache_dir, monkeypatch, forward_calls):
    real_decode = AutoencoderKLWan.decode

    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt  # the process dies after sampling, before the decode finishes

    monkeypatch.setattr(AutoencoderKLWan, "decode", crash)
    with pytest.raises(KeyboardInterrupt):
        api.render_video(project / "s.yaml")
    assert len(forward_calls) == 4  # shot one was sampled
    saved = list((cache_dir / "latents").glob("*.safetensors"))
    assert len(saved) == 1

    monkeypatch.setattr(AutoencoderKLWan, "decode", real_decode)
    forward_calls.clear()
    events = []
    result = api.render_video(project / "s.yaml", progress=events.append)
    assert result.generated == 2
    assert len(forward_calls) == 4  # only shot two is sampled; shot one is decoded from its latents
    assert any("reusing its saved latents" in e.message for e in events_of("warning", events))
    assert list((cache_dir / "latents").glob("*.safetensors")) == []  # cleaned up once the clip is stored


def test_keep_going_past_a_failed_shot(project, cache_dir, monkeypatch, mvgen):
    # shot "two" of the first job always runs out of memory: forward passes 1-4 are shot one's
    # (2 steps x 2 for guidance), every later one fails
    real = oom_on_calls(monkeypatch, lambda n: n > 4)
    write(
        project / "b.yaml", SHOTS.replace("a red car", "a green tree").replace("a blue sea", "a white wall")
    )
    r = mvgen("render", project / "s.yaml", project / "b.yaml", "--keep-going", "--json")
    assert r.code == 3, r
    jobs = json.loads(r.out)
    assert [j["status"] for j in jobs] == ["partial", "partial"]
    assert jobs[0]["generated"] == 1 and jobs[0]["failed"] == 1
    assert not (project / "s.mp4").exists()  # a video with a hole is never written
    # the shot that finished is cached: a re-run (no more faults) generates only the failed ones
    monkeypatch.setattr(WanTransformer3DModel, "forward", real)
    r = mvgen("render", project / "s.yaml", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)[0]["generated"] == 1
