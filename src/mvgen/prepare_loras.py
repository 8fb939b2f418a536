"""A job's LoRAs, found and checked before any model loads (prepare.py): every file named in the
shot list located and hashed, pickles and non-LoRA files refused, and LoRAs in diffusers' layout held
against the model's transformer (its weight shapes, read from the model folder's safetensors headers)
when that folder is here. Every mistake is reported at once, each at its place in the shot list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mvgen.config.loader import LoadedShotList, loc_str, locate
from mvgen.config.loras import LoraFile, check_fits, find_lora, transformer_shapes
from mvgen.config.presets import ModelRef, cached_hub_index, hf_offline
from mvgen.config.schema import Lora, ShotLoras
from mvgen.errors import ConfigError, MvgenError, SetupError


def _written(loaded: LoadedShotList) -> Iterator[tuple[tuple[Any, ...], Lora]]:
    """Every LoRA the shot list names, with its place in the file."""
    shots = loaded.shots
    for k, lora in enumerate(shots.loras):
        yield ("loras", k), lora
    for name, member in shots.cast.items():
        for k, lora in enumerate(member.loras):
            yield ("cast", name, "loras", k), lora
    for i, shot in enumerate(shots.shots):
        if isinstance(shot.loras, ShotLoras):
            for k, lora in enumerate(shot.loras.use):
                yield ("shots", i, "loras", "use", k), lora
        elif shot.loras:
            for k, lora in enumerate(shot.loras):
                yield ("shots", i, "loras", k), lora


def _model_folder(ref: ModelRef) -> Path | None:
    """The text-to-video model's folder when it is on this machine (nothing is built or fetched)."""
    if ref.source == "builtin":
        from mvgen.generate.tiny import tiny_root

        folder = tiny_root(ref.preset.family) / "t2v"
    elif ref.source == "local":
        folder = Path(ref.location)
    else:
        index = cached_hub_index(ref.location)
        if index is None:
            return None
        folder = index.parent
    return folder if (folder / "transformer").is_dir() else None


def resolve_loras(loaded: LoadedShotList, ref: ModelRef | None) -> tuple[dict[tuple[str, str | None], LoraFile],
                                                                        list[MvgenError]]:  # fmt: skip
    """The LoRA files by (path, weight_name) as written, and every problem found with them."""
    files: dict[tuple[str, str | None], LoraFile] = {}
    misfits: dict[tuple[str, str | None], str | None] = {}  # each file held against the model once
    problems: list[MvgenError] = []
    written = list(_written(loaded))
    if not written:  # the usual case: nothing to read
        return files, problems
    folder = _model_folder(ref) if ref is not None else None
    shapes = transformer_shapes(folder) if folder is not None else None
    for loc, lora in written:
        where = f"{locate(loaded, (*loc, 'path'))}: {loc_str((*loc, 'path'))}"
        key = (lora.path, lora.weight_name)
        try:
            if key not in files:
                files[key] = find_lora(lora, loaded.base_dir, where)
                misfits[key] = (
                    check_fits(files[key].path, shapes, ref.name) if shapes and ref is not None else None
                )
            why = misfits[key]
            if why is not None:
                raise ConfigError(f"{where}: {Path(files[key].path).name} does not fit: {why}")
        except (ConfigError, SetupError) as exc:
            if all(p.message != exc.message for p in problems):
                problems.append(exc)
    return files, problems


def pull_loras(loaded: LoadedShotList) -> list[str]:
    """Download the shot list's hub LoRAs (``path: owner/repo`` + ``weight_name``) into the Hugging
    Face cache, where renders find them; a line for each LoRA. ``SetupError`` (exit 4) when a
    download fails (offline, no such file)."""
    from huggingface_hub import hf_hub_download

    lines, seen = [], set()
    for _, lora in _written(loaded):
        key = (lora.path, lora.weight_name)
        if key in seen:
            continue
        seen.add(key)
        local = loaded.base_dir / Path(lora.path).expanduser()
        if lora.weight_name is None or local.exists():
            lines.append(f"{lora.path}: a local file, nothing to download")
            continue
        if hf_offline():  # read now: huggingface_hub reads it once, when first imported
            raise SetupError(
                f"{lora.path}/{lora.weight_name}: cannot download: HF_HUB_OFFLINE is set",
                hint="unset it on a machine with network access, then copy the Hugging Face cache here",
            )
        try:
            path = hf_hub_download(repo_id=lora.path, filename=lora.weight_name)
        except Exception as exc:  # noqa: BLE001 - offline, no such repo or file, no access: all "not fetched"
            raise SetupError(
                f"{lora.path}/{lora.weight_name}: cannot download: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                hint="on a machine with network access (HF_HUB_OFFLINE unset), then copy the Hugging Face cache here",
            ) from None
        lines.append(f"{lora.path}/{lora.weight_name}: {path}")
    return lines
