"""A render's options as one frozen record: built once (by the CLI, a script, a cron job's wrapper)
and taken by api, batch and pipeline, instead of the same two dozen keywords in every signature.
The CLI's choices come from the ``Literal`` types here and in the shot-list schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from mvgen.config.schema import BackendName, Quality
from mvgen.errors import ConfigError

Device = Literal["auto", "cpu", "cuda", "mps"]
Offload = Literal["auto", "none", "model", "sequential"]
Dtype = Literal["bfloat16", "float16", "float32"]


def choices(literal: Any) -> list[str]:
    """The values of a ``Literal`` type, for click.Choice."""
    return list(get_args(literal))


@dataclass(frozen=True)
class GridOptions:
    """Beat-grid overrides from the command line (they win over the shot list's)."""

    bpm: float | None = None
    offset_s: float | None = None
    beats_file: str | None = None

    def __post_init__(self) -> None:
        if self.bpm is not None and self.beats_file is not None:
            raise ConfigError("--bpm and --beats-file: give one or the other")
        if self.offset_s is not None and self.bpm is None:
            raise ConfigError("--offset goes with --bpm")
        if self.bpm is not None and not 0 < self.bpm <= 400:
            raise ConfigError(f"--bpm must be between 0 and 400 (got {self.bpm:g})")
        if self.offset_s is not None and self.offset_s < 0:
            raise ConfigError(f"--offset must be >= 0 seconds (got {self.offset_s:g})")

    @classmethod
    def given(cls, bpm: float | None, offset_s: float | None, beats_file: str | None) -> GridOptions | None:
        """The overrides, or None when none is given."""
        if bpm is None and offset_s is None and beats_file is None:
            return None
        return cls(bpm=bpm, offset_s=offset_s, beats_file=beats_file)


class RenderOptions(BaseModel):
    """How to render: where the inputs and outputs are, where the shots run, what to regenerate,
    how failures and other processes are handled. Every field has the CLI's default."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    audio: str | None = None  # overrides the shot list's `audio:` (one shot list only)
    out: str | None = None  # overrides `output:` (one shot list only)
    model: str | None = None  # overrides `model:`
    grid: GridOptions | None = None  # --bpm/--offset/--beats-file
    device: Device = "auto"
    offload: Offload = "auto"
    dtype: Dtype | None = None  # the weights' dtype on CUDA (default: the preset's)
    backend: BackendName | None = None  # None: the shot list's `backend:`
    ray_address: str | None = None
    ray_workers: int | None = Field(None, ge=1, le=1024)
    force: bool = False  # regenerate every shot
    only: frozenset[str] = frozenset()  # regenerate just these shots
    keep_going: bool = False  # go on past a failed shot or job (exit 3)
    wait: bool = False  # wait for another process rendering the same output (else exit 75)
    overlap: bool = True  # encode beside the generation (local backend)
    preview: bool = False  # the animatic instead of a render: no model runs
    otio: Path | None = None  # also write an OpenTimelineIO timeline here (one shot list only)
    quality: Quality | None = None  # overrides `generation.quality`
    compile: bool | None = None  # overrides `generation.compile`

    def levers(self) -> dict[str, Any]:
        """The `generation:` values the command line overrides (None: the file's)."""
        return {"quality": self.quality, "compile": self.compile}

    def backend_for(self, shotlist_backend: str) -> str:
        return self.backend or shotlist_backend
