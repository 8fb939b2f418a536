"""Model families. Adding one is a module here (its rules, pipeline classes, latents handling and
tiny build) added to ``FAMILIES``, plus preset files in configs/models/."""

from __future__ import annotations

from mvgen.families import (
    anyflow,
    cogvideox,
    helios,
    hunyuan,
    hunyuan15,
    kandinsky,
    ltx,
    ltx2,
    skyreels,
    vace,
    wan,
)
from mvgen.families.base import Family

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        wan.FAMILY,
        vace.FAMILY,
        ltx.FAMILY,
        cogvideox.FAMILY,
        hunyuan.FAMILY,
        skyreels.FAMILY,
        kandinsky.FAMILY,
        hunyuan15.FAMILY,
        ltx2.FAMILY,
        anyflow.FAMILY,
        helios.FAMILY,
    )
}

# diffusers pipeline class -> family name
PIPELINE_FAMILIES: dict[str, str] = {cls: f.name for f in FAMILIES.values() for cls in f.pipelines}


def get_family(name: str) -> Family:
    return FAMILIES[name]


__all__ = ["FAMILIES", "PIPELINE_FAMILIES", "Family", "get_family"]
