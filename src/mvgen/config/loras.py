"""LoRA files: found (a local ``.safetensors``, or a Hugging Face repo's file in the local hub
cache: nothing is downloaded while rendering), hashed, and checked against the model before any
model loads: pickles are refused, and a LoRA in diffusers' (PEFT) layout must name modules the
model's transformer has, with shapes that fit (another family or size is caught here).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mvgen.config.schema import Lora
from mvgen.errors import ConfigError, SetupError

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl"}
# key prefixes of a LoRA saved for a pipeline's transformer (diffusers) or for the bare model (PEFT)
PREFIXES = ("transformer.", "base_model.model.")


@dataclass(frozen=True)
class LoraFile:
    path: str  # the resolved file
    sha256: str


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors file's header (no tensor is read). ``ValueError``
    when it is not a safetensors file."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("too short")
        (size,) = struct.unpack("<Q", head)
        if size > 100 * 2**20:
            raise ValueError("header too large")
        try:
            header = json.loads(f.read(size))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError("no safetensors header") from exc
    if not isinstance(header, dict):
        raise ValueError("no safetensors header")
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}


@cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size, mtime: a changed file is hashed again
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_lora(lora: Lora, base_dir: Path, where: str) -> LoraFile:
    """The file of a shot list's LoRA, checked to be a safetensors file. ``where``: the shot list's
    place, for messages."""
    path = _locate(lora, base_dir, where)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ConfigError(
            f"{where}: {path.name} is a pickled checkpoint, which mvgen refuses to load (it can run code)",
            hint="convert it to .safetensors",
        )
    try:
        shapes = safetensors_shapes(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: {path} is not a .safetensors file ({exc})") from None
    if not any(".lora" in k or "lora_" in k for k in shapes):
        raise ConfigError(
            f"{where}: {path.name} holds no LoRA weights (no lora_A/lora_B or lora_down/lora_up keys)"
        )
    st = path.stat()
    return LoraFile(str(path.resolve()), _sha256(str(path.resolve()), st.st_size, st.st_mtime_ns))


def _locate(lora: Lora, base_dir: Path, where: str) -> Path:
    local = (
        (base_dir / Path(lora.path).expanduser()) if not Path(lora.path).is_absolute() else Path(lora.path)
    )
    if lora.weight_name is None or local.exists():
        if not local.exists():
            raise ConfigError(f"{where}: {local}: LoRA file not found", hint="a .safetensors path relative to the shot list, "
                              "or a Hugging Face repo id with weight_name")  # fmt: skip
        if local.is_dir():
            raise ConfigError(f"{where}: {local} is a folder; name the .safetensors file in it")
        return local
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(lora.path, lora.weight_name)
    if not isinstance(found, str):
        raise SetupError(
            f"{where}: LoRA {lora.path}/{lora.weight_name} is not in the local Hugging Face cache (mvgen "
            "downloads nothing while rendering)",
            hint=f"`mvgen loras pull SHOTS` (or `huggingface-cli download {lora.path} {lora.weight_name}`) on a "
            "machine with network access",
        )
    return Path(found)


def check_fits(lora_path: str, model_shapes: dict[str, tuple[int, ...]], model: str) -> str | None:
    """Why a LoRA in diffusers' (PEFT) layout does not fit a transformer whose weight shapes are
    ``model_shapes`` (None: it fits, or its layout is another one, which loading converts and
    checks). The message names the first module that is missing or has another shape."""
    lora = safetensors_shapes(Path(lora_path))
    pairs = [(k, k.replace(".lora_A.weight", ".lora_B.weight")) for k in lora if k.endswith(".lora_A.weight")]
    if not pairs:
        return None
    for a, b in pairs:
        module = a[: -len(".lora_A.weight")]
        for prefix in PREFIXES:
            module = module.removeprefix(prefix)
        target = model_shapes.get(module + ".weight")
        if target is None:
            return f"it adapts {module!r}, which {model}'s transformer does not have (a LoRA for another model family?)"
        out_in = (lora[b][0], lora[a][1]) if b in lora else None
        if out_in is not None and tuple(target[:2]) != out_in:
            return (f"it adapts {module!r} as {out_in[1]} -> {out_in[0]} features, but {model}'s is "
                    f"{target[1]} -> {target[0]} (a LoRA for another size of the model?)")  # fmt: skip
    return None


def transformer_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """The weight shapes of a diffusers model folder's transformer (from its safetensors headers)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for f in sorted((folder / "transformer").glob("*.safetensors")):
        shapes.update(safetensors_shapes(f))
    return shapes
