import json
import socket

import pytest

from mvgen.config.presets import all_presets, load_preset_file, presets_dir, resolve_model
from mvgen.errors import ConfigError, SetupError


def test_every_preset_file_validates():
    files = sorted(presets_dir().glob("*.yaml"))
    assert len(files) >= 3
    for f in files:
        p = load_preset_file(f)
        assert p.valid_frames(p.max_frames) == p.max_frames, f"{f.name}: max_frames breaks the frame rule"
        assert p.width % p.size_multiple == 0 and p.height % p.size_multiple == 0
        assert p.builtin or p.repo_id


def test_unknown_model_is_bad_input():
    with pytest.raises(ConfigError) as e:
        resolve_model("no-such-model")
    assert "unknown model 'no-such-model'" in e.value.message
    assert "tiny" in (e.value.hint or "")


def test_hub_preset_offline_without_weights_is_environment_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: calls.append(a))
    with pytest.raises(SetupError) as e:
        resolve_model("wan2.1-t2v-1.3b")
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in e.value.message
    assert "`mvgen models pull wan2.1-t2v-1.3b`" in e.value.hint
    assert "hf download Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in e.value.hint
    assert calls == []  # offline means offline: no connection attempted


def test_local_folder_family_is_read_from_model_index(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    ref = resolve_model(str(tmp_path / "m"))
    assert (ref.source, ref.preset.family, ref.preset.frame_step) == ("local", "wan", 4)
    (tmp_path / "m" / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(ConfigError) as e:
        resolve_model(str(tmp_path / "m"))
    assert "FluxPipeline is not supported" in e.value.message


def test_tiny_is_builtin():
    ref = resolve_model("tiny")
    assert ref.source == "builtin" and all_presets()["tiny"].render_scale < 1


@pytest.mark.parametrize(
    "requested, free_gb, need_gb, expected",
    [
        ("auto", 80.0, 8.2, "none"),  # 1.3B on an H100: all on the GPU
        ("auto", 9.0, 8.2, "model"),  # just short of the headroom: one component at a time
        ("auto", 24.0, 40.0, "model"),  # 14B on a 24 GB card: the transformer fits alone
        ("auto", 12.0, 40.0, "sequential"),  # 14B on a 12 GB card: layer by layer
        ("none", 4.0, 40.0, "none"),  # an explicit choice is kept
        ("sequential", 80.0, 8.2, "sequential"),
    ],
)
def test_choose_offload(requested, free_gb, need_gb, expected):
    from mvgen.generate.local import choose_offload

    assert choose_offload(requested, free_gb, need_gb) == expected


def test_tiny_install_without_its_shipped_weights_is_a_setup_error(tmp_path):
    """A broken install (package data missing) says what to do instead of a traceback."""
    from mvgen.errors import SetupError
    from mvgen.families.wan import TINY_WEIGHTS, install_tiny

    assert (TINY_WEIGHTS / "t2v" / "model_index.json").is_file()  # the real package has them
    with pytest.raises(SetupError, match="weights are missing") as err:
        install_tiny(tmp_path / "dest", source=tmp_path / "nothing")
    assert "reinstall" in err.value.hint and not (tmp_path / "dest").exists()


def test_a_diffusion_forcing_preset_slides_windows_and_others_make_one_call():
    from mvgen.families.base import sliding_windows, window_overlap

    for name, p in all_presets().items():
        if p.window_frames:  # a window is a valid clip, an overlap a valid prefix, both shorter than a run
            assert p.valid_frames(p.window_frames) == p.window_frames < p.max_frames, name
            assert window_overlap(p.window_frames) % p.frame_step == p.frame_offset, name
    assert (
        window_overlap(97) == 17 and window_overlap(121) == 21 and window_overlap(17) == 5
    )  # 17 of 97: SkyReels'
    assert sliding_windows(97, 97) == 1 and sliding_windows(98, 97) == 2 and sliding_windows(81, 0) == 1
    # each further window adds window - overlap new frames: 97 + 3 * 80 = 337 frames in 4 windows
    assert sliding_windows(337, 97) == 4 and sliding_windows(338, 97) == 5


def test_the_image_to_video_class_follows_the_weights():
    """One repo for both tasks names its text-to-video class in model_index.json; the sibling's class
    is the family's image-to-video class on those weights (diffusion forcing keeps its own), and a
    first-and-last-frame role takes the family's class for it."""
    from mvgen.families import FAMILIES

    sky, ltx2 = FAMILIES["skyreels"], FAMILIES["ltx2"]
    df = "SkyReelsV2DiffusionForcingPipeline"
    assert (
        sky.sibling_class("i2v", df)
        == sky.sibling_class("flf", df)
        == df.replace("Forcing", "ForcingImageToVideo")
    )
    assert sky.sibling_class("i2v", "SkyReelsV2ImageToVideoPipeline") == "SkyReelsV2ImageToVideoPipeline"
    assert sky.sibling_class("flf", None) == "SkyReelsV2ImageToVideoPipeline"
    assert ltx2.sibling_class("i2v", "LTX2Pipeline") == "LTX2ImageToVideoPipeline"
    assert ltx2.sibling_class("flf", "LTX2Pipeline") == "LTX2ConditionPipeline"


def test_a_window_no_longer_than_its_overlap_is_refused(tmp_path):
    """A diffusion-forcing window must move on: 5 frames would share all 5 with the one before."""
    source = (presets_dir() / "tiny-skyreels.yaml").read_text()
    assert "window_frames: 17" in source
    bad = tmp_path / "tiny-skyreels.yaml"
    bad.write_text(source.replace("window_frames: 17", "window_frames: 5"))
    with pytest.raises(
        ConfigError, match="invalid model preset: window_frames: .*no longer than the 5 frames"
    ):
        load_preset_file(bad)
    bad.write_text(source.replace("window_frames: 17", "window_frames: 9"))
    assert load_preset_file(bad).window_frames == 9
