"""Model presets (``configs/models/*.yaml``) and resolving a ``model:`` value to a model reference.

A ``model:`` value is a preset name, a local diffusers folder, or a Hugging Face repo id. Nothing here
imports torch or diffusers: resolving a model is cheap and happens before anything expensive.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mvgen.errors import ConfigError, SetupError
from mvgen.families import FAMILIES, PIPELINE_FAMILIES
from mvgen.families.base import window_overlap

Dtype = Literal["bfloat16", "float16", "float32"]

_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class ModelPreset(BaseModel):
    """Everything mvgen needs to know about a model before loading it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    family: str
    description: str = ""
    builtin: bool = False
    repo_id: str | None = None
    i2v_repo_id: str | None = None
    flf_repo_id: str | None = Field(
        None, description="the first-and-last-frame model (end frames, bridges); may be the i2v one"
    )
    fps: float = Field(gt=0, description="native frame rate the model was trained at")
    width: int = Field(gt=0, description="native width")
    height: int = Field(gt=0, description="native height")
    size_multiple: int = Field(gt=0, description="width and height must be multiples of this")
    frame_step: int = Field(gt=0, description="frames = frame_step * k + frame_offset")
    frame_offset: int = Field(ge=0)
    max_frames: int = Field(gt=0, description="most frames one call can make")
    window_frames: int = Field(
        0,
        ge=0,
        description="frames one denoising window makes where one run makes a longer clip by "
        "sliding windows (diffusion forcing, up to max_frames); 0: one call makes the whole clip",
    )
    steps: int = Field(gt=0)
    guidance: float = Field(ge=0)
    dtype: Dtype = "bfloat16"
    vram_gb: float = Field(ge=0, description="rough peak VRAM at the native size")
    step_cost_s: float | None = Field(
        None,
        gt=0,
        description="measured seconds per denoising step per megapixel-frame (for estimates); "
        "null: unknown until this machine has rendered with the model",
    )
    max_sequence_length: int = Field(gt=0)
    render_scale: float = Field(1.0, gt=0, le=1, description="generate at this fraction of the output size")

    def valid_frames(self, needed: int) -> int:
        """Smallest frame count allowed by the frame rule that covers ``needed``, capped at the maximum."""
        k = max(1, math.ceil((needed - self.frame_offset) / self.frame_step))
        frames = self.frame_step * k + self.frame_offset
        if frames > self.max_frames:
            frames = (
                self.frame_step * ((self.max_frames - self.frame_offset) // self.frame_step)
                + self.frame_offset
            )
        return frames

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str) -> str:
        if value not in FAMILIES:
            raise ValueError(f"unknown family {value!r} (known: {', '.join(sorted(FAMILIES))})")
        return value

    @field_validator("window_frames")
    @classmethod
    def _window_moves(cls, value: int) -> int:
        if 0 < value <= window_overlap(value):
            raise ValueError(
                f"window_frames {value} is no longer than the {window_overlap(value)} frames each window "
                "shares with the one before: use 0 (one call) or a longer window (97, 121)"
            )
        return value

    @property
    def family_label(self) -> str:
        return FAMILIES[self.family].label

    @property
    def has_i2v(self) -> bool:
        """Whether chained shots can be generated: a built-in tiny build with its image-to-video
        sibling, or a preset that names one."""
        return self.i2v_repo_id is not None or (self.builtin and FAMILIES[self.family].tiny_i2v)

    @property
    def has_flf(self) -> bool:
        """Whether shots can end on a given frame (``end_image:``, ``end: next``, bridges): a
        built-in tiny build with its first-and-last-frame sibling, or a preset that names one."""
        return self.flf_repo_id is not None or (self.builtin and FAMILIES[self.family].tiny_flf is not None)

    def frame_rule(self) -> str:
        return f"{self.frame_step}k" + (f"+{self.frame_offset}" if self.frame_offset else "")


def presets_dir() -> Path:
    """Installed wheels carry the presets as package data; a source checkout reads configs/models."""
    packaged = resources.files("mvgen") / "presets"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "configs" / "models"


def reference_path() -> Path:
    """The shot list that lists every key (``configs/reference.yaml``; package data when installed)."""
    packaged = resources.files("mvgen") / "reference.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "configs" / "reference.yaml"


def load_preset_file(path: Path) -> ModelPreset:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        preset = ModelPreset.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "preset"
        raise ConfigError(f"{path}: invalid model preset: {where}: {first['msg']}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: invalid model preset: {str(exc).splitlines()[0]}") from None
    if preset.name != path.stem:
        raise ConfigError(f"{path}: preset name {preset.name!r} must match the file name {path.stem!r}")
    return preset


@cache
def all_presets() -> dict[str, ModelPreset]:
    folder = presets_dir()
    return {p.stem: load_preset_file(p) for p in sorted(folder.glob("*.yaml"))}


@dataclass(frozen=True)
class ModelRef:
    """A resolved ``model:`` value. ``source`` is ``builtin`` (tiny), ``local`` (folder) or ``hub``."""

    spec: str
    preset: ModelPreset
    source: Literal["builtin", "local", "hub"]
    location: str  # folder path for local, repo id for hub, preset name for builtin

    @property
    def name(self) -> str:
        return self.preset.name


def hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _family_from_index(index_path: Path, spec: str) -> str:
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        cls = index["_class_name"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"model {spec!r}: {index_path} is not a readable diffusers model_index.json"
        ) from None
    family = PIPELINE_FAMILIES.get(cls)
    if family is None:
        supported = ", ".join(sorted(PIPELINE_FAMILIES))
        raise ConfigError(f"model {spec!r}: pipeline class {cls} is not supported (supported: {supported})")
    return family


def _custom_preset(name: str, family: str, **extra: object) -> ModelPreset:
    return ModelPreset(name=name, family=family, **{**FAMILIES[family].defaults, **extra})  # type: ignore[arg-type]


def cached_hub_index(repo_id: str) -> Path | None:
    """model_index.json of ``repo_id`` in the local Hugging Face cache, or None. Never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json")
    return Path(found) if isinstance(found, str) else None


def pull_hint(repo_id: str, name: str | None = None) -> str:
    """The exact command that fetches a model's weights (``name``: its preset, when it has one)."""
    return (
        f"download it on a machine with network access: `mvgen models pull {name or repo_id}` "
        f"(or `hf download {repo_id}`), then copy the Hugging Face cache here or point --model at the folder"
    )


def resolve_model(spec: str, *, base_dir: Path | None = None, require_weights: bool = True) -> ModelRef:
    """Turn a ``model:`` value into a ``ModelRef``. Cheap: reads at most one JSON file.

    Raises ``ConfigError`` (exit 2) for a name that is nothing mvgen knows, and, with
    ``require_weights``, ``SetupError`` (exit 4) when a hub model's weights are not in the local
    cache and cannot be fetched. Planning needs only the preset, so ``mvgen plan`` passes False.
    """
    presets = all_presets()
    if spec in presets:
        preset = presets[spec]
        if preset.builtin:
            return ModelRef(spec, preset, "builtin", spec)
        assert preset.repo_id is not None
        if require_weights:
            require_cached(preset.repo_id, spec, name=spec, family=preset.family)
        return ModelRef(spec, preset, "hub", preset.repo_id)
    folder = Path(spec).expanduser()
    if not folder.is_absolute() and base_dir is not None and not folder.exists():
        folder = base_dir / folder
    if folder.is_dir():
        index = folder / "model_index.json"
        if not index.is_file():
            raise ConfigError(
                f"model {spec!r}: folder has no model_index.json; is it a diffusers pipeline folder?"
            )
        family = _family_from_index(index, spec)
        return ModelRef(spec, _custom_preset(folder.name, family), "local", str(folder.resolve()))
    if _REPO_ID_RE.match(spec) and not spec.startswith((".", "/")):
        found = require_cached(spec, spec) if require_weights else cached_hub_index(spec)
        family = _family_from_index(found, spec) if found else "wan"
        return ModelRef(spec, _custom_preset(spec, family, repo_id=spec), "hub", spec)
    names = ", ".join(sorted(presets))
    raise ConfigError(
        f"unknown model {spec!r}: not a preset, a diffusers folder or a repo id",
        hint=f"presets: {names} (see `mvgen models`)",
    )


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """One quick TCP connect to the hub: fails in milliseconds on a machine without network,
    where huggingface_hub itself would retry for ~25 s before giving up."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def require_cached(repo_id: str, spec: str, *, name: str | None = None, family: str = "wan") -> Path | None:
    found = cached_hub_index(repo_id)
    if found is not None:
        return found
    why = "HF_HUB_OFFLINE is set" if hf_offline() else "the Hugging Face Hub cannot be reached"
    if hf_offline() or not _hub_reachable():
        # the built-in tiny model of the same family (its code path), else tiny
        tiny = next((n for n, p in all_presets().items() if p.builtin and p.family == family), "tiny")
        raise SetupError(
            f"model {spec!r}: weights for {repo_id} are not in the Hugging Face cache and {why}",
            hint=pull_hint(repo_id, name) + f"; or try the whole pipeline now with --model {tiny}",
        )
    return None


def generation_size(preset: ModelPreset, width: int, height: int) -> tuple[int, int]:
    """The size the model renders at for an output of ``width`` x ``height``."""
    if preset.render_scale >= 1:
        return width, height
    m = preset.size_multiple

    def scaled(v: int) -> int:
        return max(m, int(round(v * preset.render_scale / m)) * m)

    return scaled(width), scaled(height)


# Weight formats mvgen never loads (it loads safetensors only): not worth downloading.
_SKIP_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.gguf", "*.onnx", "*.msgpack", "*.h5"]


def pull(spec: str, *, with_i2v: bool = False) -> list[Path]:
    """Download a preset's (or repo id's) weights into the standard Hugging Face cache, with the
    hub's own progress bars. Returns the snapshot folders. ``SetupError`` (exit 4) offline or when
    the download fails; ``ConfigError`` for a name that is neither a preset nor a repo id."""
    presets = all_presets()
    if spec in presets:
        preset = presets[spec]
        if preset.builtin:
            return []
        siblings = (preset.i2v_repo_id, preset.flf_repo_id) if with_i2v else ()
        repos = list(dict.fromkeys([preset.repo_id, *(r for r in siblings if r)]))
    elif _REPO_ID_RE.match(spec):
        repos = [spec]
    else:
        raise ConfigError(
            f"unknown model {spec!r}: not a preset or a repo id", hint="see `mvgen models` for the presets"
        )
    if hf_offline():
        raise SetupError(
            f"cannot download {repos[0]}: HF_HUB_OFFLINE is set", hint="unset it on a machine with network"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    folders = []
    for repo in repos:
        assert repo is not None
        if not _hub_reachable():
            raise SetupError(
                f"cannot download {repo}: the Hugging Face Hub cannot be reached from here",
                hint=f"run `mvgen models pull {spec}` on a machine with network access and copy the cache",
            )
        try:
            folders.append(Path(snapshot_download(repo, ignore_patterns=_SKIP_PATTERNS)))
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
            raise SetupError(f"cannot download {repo}: {str(exc).splitlines()[0]}") from None
    return folders
