"""Fuzzing the shot-list loader: whatever the bytes, it returns a ShotList or raises ConfigError
with a message that starts with the file name; never another exception."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mvgen.config import parse_shotlist_text
from mvgen.config.schema import ShotList
from mvgen.errors import ConfigError

PATH = Path("fuzz.yaml")
KEYS = ["version", "title", "model", "audio", "output", "video", "generation", "style", "negative", "timing",
        "shots", "width", "height", "fps", "steps", "guidance", "seed", "unit", "fit", "length", "id", "prompt",
        "bogus"]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["2 bars", "3.5s", "beats", "loop", "tiny", "-1", "1e999", ""]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=20,
)


def check(text: str) -> None:
    try:
        result = parse_shotlist_text(text, PATH)
    except ConfigError as exc:
        assert exc.message.startswith("fuzz.yaml"), exc.message
        assert "\n" not in exc.message
        return
    assert isinstance(result, ShotList)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=8))
def test_structured_documents(doc):
    check(yaml.safe_dump(doc, allow_unicode=True))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
    st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=4), max_size=4),
)
def test_documents_with_shots(doc, shots):
    check(yaml.safe_dump({**doc, "shots": shots}, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text):
    check(text)
