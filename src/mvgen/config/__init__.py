"""Configuration: the shot-list schema, its YAML loader and the model presets."""

from mvgen.config.loader import LoadedShotList, load_shotlist, parse_shotlist_text
from mvgen.config.schema import Length, Shot, ShotList, parse_length

__all__ = [
    "Length",
    "LoadedShotList",
    "Shot",
    "ShotList",
    "load_shotlist",
    "parse_length",
    "parse_shotlist_text",
]
