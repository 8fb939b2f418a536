import re
from pathlib import Path

import pytest
import yaml

from mvgen.config import parse_length, parse_shotlist_text
from mvgen.config.schema import ShotList
from mvgen.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "raw, value, unit",
    [(8, 8.0, None), (2.5, 2.5, None), ("2 bars", 2.0, "bars"), ("1 bar", 1.0, "bars"), ("3.5s", 3.5, "seconds"),
     ("4 beats", 4.0, "beats"), ("12", 12.0, None), (" 0.5 sec ", 0.5, "seconds"), ("section", 1.0, "sections"),
     ("2 sections", 2.0, "sections"), ("Section", 1.0, "sections")],
)  # fmt: skip
def test_parse_length(raw, value, unit):
    length = parse_length(raw)
    assert (length.value, length.unit) == (value, unit)


@pytest.mark.parametrize(
    "raw",
    [0, -2, "0 bars", "two bars", "3 minutes", True, [1], "", "0 sections", "1.5 sections", "sections x"],
)
def test_parse_length_rejects(raw):
    with pytest.raises(ValueError):
        parse_length(raw)


def test_defaults_and_ids():
    sl = parse_shotlist_text("shots: [{prompt: a}, {prompt: b, id: hero}]", Path("x.yaml"))
    assert sl.model == "wan2.1-t2v-1.3b"
    assert (sl.video.width, sl.video.height, sl.video.fps) == (832, 480, 24.0)
    assert (sl.timing.unit, sl.timing.fit) == ("beats", "loop")
    assert sl.shot_ids() == ["shot-001", "hero"]


def _models_in(annotation):
    """The pydantic model classes inside an annotation (through unions and Annotated)."""
    import typing

    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _keys(model_cls, prefix=""):
    out = set()
    for name, field in model_cls.model_fields.items():
        out.add(prefix + name)
        if name not in (
            "length",
            "transition",
            "loras",
            "cast",
        ):  # a value, small mapping or list: in comments
            for sub in _models_in(field.annotation):
                out |= _keys(sub, prefix + name + ".")
    return out


def _yaml_keys(data, prefix=""):
    out = set()
    for k, v in data.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _yaml_keys(v, prefix + k + ".")
        if k == "shots":
            for shot in v:
                out |= _yaml_keys(shot, "shots.")
    return out


def test_reference_yaml_loads_and_lists_every_key():
    path = REPO / "configs" / "reference.yaml"
    sl = parse_shotlist_text(path.read_text(), path)
    assert isinstance(sl, ShotList)
    from mvgen.config.schema import Shot

    expected = _keys(ShotList) | {f"shots.{k}" for k in Shot.model_fields}
    written = _yaml_keys(yaml.safe_load(path.read_text()))
    assert expected - written == set(), "keys missing from configs/reference.yaml"
    assert written - expected == set(), "configs/reference.yaml has keys the schema does not know"


def test_reference_yaml_documents_every_lora_key():
    """`loras:` entries are written as comments (a path there would be a file to find): each of a
    LoRA's keys, and a shot's {inherit, use}, is named in them."""
    from mvgen.config.schema import Lora, ShotLoras

    text = (REPO / "configs" / "reference.yaml").read_text()
    for key in [*Lora.model_fields, *ShotLoras.model_fields]:
        assert re.search(rf"#.*\b{key}\b", text), key


def test_reference_yaml_documents_every_cast_key():
    """`cast:` members are written as comments (their pictures would be files to find)."""
    from mvgen.config.schema import CastMember

    text = (REPO / "configs" / "reference.yaml").read_text()
    for key in CastMember.model_fields:
        assert re.search(rf"#.*\b{key}\b:", text), key


def test_reference_yaml_defaults_match_the_schema():
    """Every scalar default written in reference.yaml equals the pydantic default."""
    data = yaml.safe_load((REPO / "configs" / "reference.yaml").read_text())
    defaults = ShotList(shots=[{"prompt": "x"}])
    for section in ("video", "generation", "timing"):
        for key, value in data[section].items():
            assert getattr(getattr(defaults, section), key) == value, f"{section}.{key}"
    for key in ("version", "model", "style", "negative"):
        assert getattr(defaults, key) == data[key], key
    from mvgen.config.schema import AudioSettings

    audio_defaults = AudioSettings(path="x")
    for key, value in data["audio"].items():
        if key != "path":
            assert getattr(audio_defaults, key) == value, f"audio.{key}"


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*/*.yaml")), ids=lambda p: p.parent.name)
def test_examples_load(example):
    sl = parse_shotlist_text(example.read_text(), example)
    assert 8 <= len(sl.shots) <= 12
    assert (example.parent / sl.audio).is_file()


def test_duplicate_id_points_at_the_second_one():
    with pytest.raises(ConfigError) as e:
        parse_shotlist_text("shots:\n  - {prompt: a, id: x}\n  - {prompt: b, id: x}\n", Path("s.yaml"))
    assert e.value.message.startswith("s.yaml:3:")
    assert "shots[1].id: duplicate id 'x'" in e.value.message
