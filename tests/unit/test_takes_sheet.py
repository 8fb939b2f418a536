"""Take scores, the cut sheet's warnings, the ETA clock and the shot-list editor behind `mvgen pick`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mvgen.config import parse_shotlist_text
from mvgen.config.edit import set_shot_keys
from mvgen.config.loader import load_shotlist
from mvgen.cutsheet import shot_warnings
from mvgen.errors import ConfigError
from mvgen.estimate import EtaClock, Rate, work_units
from mvgen.media.score import best_take, clip_metrics, score
from mvgen.planner import plan_video
from mvgen.timeline import TAKE_STRIDE, take_seed
from tests.unit.test_timeline import TINY, grid, shots


def _clip(levels, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    frames = np.stack([np.full((32, 48, 3), lv, np.float32) for lv in levels])
    frames += rng.standard_normal(frames.shape).astype(np.float32) * noise
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_metrics_see_black_frozen_flicker_and_motion():
    black = clip_metrics(_clip([2] * 8))
    assert black["black"] == 1.0 and black["frozen"] == 1.0
    fade = clip_metrics(_clip(np.linspace(60, 200, 12)))
    strobe = clip_metrics(_clip([80, 160] * 6))
    assert (
        fade["flicker"] < 0.005 < 0.5 < strobe["flicker"]
    )  # a steady fade is not flicker (uint8 rounding only)
    assert fade["black"] == 0.0 and fade["frozen"] == 0.0 and fade["motion"] > 0.03
    moving = _clip([120] * 10, noise=0)
    moving[:, :, :] = 0
    for k in range(10):  # a bright square crossing the frame
        moving[k, 8:24, 4 * k : 4 * k + 12] = 255
    m = clip_metrics(moving)
    assert m["frozen"] == 0.0 and 0 < m["motion"] < 0.25
    # a usable moving clip beats a black one, a frozen one and a strobing one
    ok = score(m)
    assert ok > score(black) and ok > score(clip_metrics(_clip([120] * 10))) and ok > score(strobe)


def test_best_take_is_deterministic_and_the_earliest_wins_a_tie():
    assert best_take([0.1, 0.3, 0.3, 0.2]) == 1
    assert best_take([-1.0]) == 0
    assert take_seed(5, 0) == 5 and take_seed(5, 2) == 5 + 2 * TAKE_STRIDE
    assert take_seed(2**63 - 1, 1) == TAKE_STRIDE - 1  # stays a valid seed


def test_warnings_for_slowed_and_over_max_frames_when_long_shots_are_not_extended():
    s = shots("""
  - {id: long, prompt: x, length: 16}
  - {id: short, prompt: y, length: 2}
""", header="video: {width: 208, height: 128, fps: 24}\n")  # fmt: skip
    plan = plan_video(s, grid(duration=10.0), TINY, extend_long=False)
    long = plan.shots[0]
    warnings = shot_warnings(plan, long, TINY.max_frames)
    needed = round(long.slot_frames / 24 * 8)
    assert warnings[0] == f"over max frames ({needed} > {TINY.max_frames})"
    assert warnings[1] == f"slowed down x{(long.slot_frames / 24) / (long.num_frames / 8):.2f}"
    assert shot_warnings(plan, plan.shots[1], TINY.max_frames) == []


def test_eta_clock_uses_the_prior_then_the_measured_pace():
    s = shots("  - {id: a, prompt: x, length: 4}\n  - {id: b, prompt: y, length: 4, takes: 2}\n",
              header="video: {width: 208, height: 128, fps: 24}\ntiming: {fit: trim}\n")  # fmt: skip
    plan = plan_video(s, grid(duration=10.0), TINY)
    a, b = plan.shots[:2]
    units = work_units(plan, a)
    assert units == plan.steps * a.num_frames * plan.gen_width * plan.gen_height / 1e6
    clock = EtaClock(plan, [a, b], Rate(2.0, "preset"))
    total = units + 2 * work_units(plan, b)
    assert clock.remaining() == {"eta_s": round(2.0 * total, 1)}
    clock.done(a, seconds=units * 5.0)  # slower than the prior: the measured pace wins
    assert clock.remaining() == {"eta_s": round(5.0 * (total - units), 1)}
    assert EtaClock(plan, [a], None).remaining() == {}


BLOCK = """version: 1
# a comment that must survive
shots:
  - id: a            # the opening
    prompt: "x"
    seed: 7
  - {id: b, prompt: y, takes: 3}
  - id: c
    prompt: >
      a folded
      prompt
"""


def test_set_shot_keys_edits_in_place_and_keeps_comments(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text(BLOCK)
    loaded = load_shotlist(path)
    text = set_shot_keys(loaded, 0, {"seed": 99, "takes": 1})
    assert "# a comment that must survive" in text and "# the opening" in text and "seed: 7" not in text
    parsed = parse_shotlist_text(text, path)
    assert (parsed.shots[0].seed, parsed.shots[0].takes) == (99, 1)
    text = set_shot_keys(loaded, 1, {"seed": 5, "takes": 1})
    parsed = parse_shotlist_text(text, path)
    assert "{id: b, prompt: y, takes: 1, seed: 5}" in text and parsed.shots[1].seed == 5
    text = set_shot_keys(loaded, 2, {"seed": 3})
    parsed = parse_shotlist_text(text, path)
    assert parsed.shots[2].seed == 3 and parsed.shots[2].prompt.strip() == "a folded prompt"
    with pytest.raises(ConfigError):
        set_shot_keys(loaded, 1, {"seed": -1})  # never writes what does not load back


def _tiny_clip(folder: Path) -> Path:
    """A CLIP with random weights at a few hundred kB (character-level BPE vocabulary, no merges)."""
    import json
    import string

    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    chars = sorted(set(string.ascii_lowercase + string.digits + ",.-'"))
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=len(vocab) - 2,
                         eos_token_id=len(vocab) - 1, **small),
        vision_config=dict(image_size=32, patch_size=8, **small),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(folder)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tok).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return _tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


def test_prompt_match_with_a_local_clip_and_without_one(tiny_clip, tmp_path, monkeypatch):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    from mvgen.media import score as score_mod

    folder = tiny_clip
    frames = (np.random.default_rng(1).random((6, 40, 60, 3)) * 255).astype(np.uint8)
    monkeypatch.delenv(score_mod.SCORE_MODEL_ENV, raising=False)
    assert score_mod.score_take(frames, "a red car")["prompt_match"] is None  # off by default

    monkeypatch.setenv(score_mod.SCORE_MODEL_ENV, str(folder))
    score_mod._prompt_model.cache_clear()
    got = score_mod.score_take(frames, "a red car")
    # the cosine of the image and text embeddings, computed here from the model's own towers
    model, proc = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    inputs = proc(text=["a red car"], images=[frames[3]], return_tensors="pt", padding=True)
    with torch.no_grad():
        img = model.visual_projection(model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output)
        txt = model.text_projection(model.text_model(input_ids=inputs["input_ids"]).pooler_output)
    cosine = float(torch.nn.functional.cosine_similarity(img, txt)[0])
    assert got["prompt_match"] == pytest.approx(cosine, abs=1e-5)
    without = {k: v for k, v in got.items() if k not in ("prompt_match", "score")}
    assert got["score"] == pytest.approx(
        score({**without, "prompt_match": None}) + 2.0 * got["prompt_match"], abs=1e-5
    )
    assert score_mod.prompt_match(frames[3], "blue sea") != got["prompt_match"]

    monkeypatch.setenv(score_mod.SCORE_MODEL_ENV, str(tmp_path / "missing"))
    score_mod._prompt_model.cache_clear()
    assert score_mod.prompt_match(frames[3], "a red car") is None  # never downloads; just off
    score_mod._prompt_model.cache_clear()


def test_identity_with_a_local_clip_is_the_cosine_of_image_embeddings(tiny_clip, monkeypatch):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    from mvgen.media import score as score_mod

    folder = tiny_clip
    rng = np.random.default_rng(2)
    frames = (rng.random((8, 40, 60, 3)) * 255).astype(np.uint8)
    ref = (rng.random((50, 40, 3)) * 255).astype(np.uint8)
    monkeypatch.setenv(score_mod.SCORE_MODEL_ENV, str(folder))
    score_mod._prompt_model.cache_clear()
    got = score_mod.identity(frames, [("mira", ref)])
    model, proc = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)

    def embed(picture):
        inputs = proc(images=[picture], return_tensors="pt")
        with torch.no_grad():
            e = model.visual_projection(
                model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output
            )[0]
        return e / e.norm()

    # the frames at a quarter, the middle and three quarters of the clip, each against the picture
    expected = np.mean([max(0.0, float(embed(frames[i]) @ embed(ref))) for i in (2, 4, 6)])
    assert got == pytest.approx(expected, abs=1e-4)
    monkeypatch.delenv(score_mod.SCORE_MODEL_ENV)
    assert score_mod.identity(frames, [("mira", ref)]) != pytest.approx(got, abs=1e-4)  # the fallback
    score_mod._prompt_model.cache_clear()
