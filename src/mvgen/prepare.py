"""Preflight: a shot list, its track, its model and its outputs checked before anything runs, and
the job's beat grid and plan.

Everything a user can get wrong is checked in ``prepare`` before any model loads, and every mistake
found is reported at once (one ``ConfigError``, a line each).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mvgen.audio.beatsfile import BeatOverride, override_grid, read_beats_file
from mvgen.audio.grid import BeatGrid
from mvgen.audio.probe import AudioInfo, probe_audio
from mvgen.config.bridges import is_bridge
from mvgen.config.loader import LoadedShotList, load_shotlist, loc_str, locate
from mvgen.config.loras import LoraFile
from mvgen.config.presets import ModelRef, all_presets, cached_hub_index, require_cached, resolve_model
from mvgen.config.schema import ShotList
from mvgen.config.stills import StillFile, find_still
from mvgen.errors import AudioError, ConfigError, MvgenError, SetupError
from mvgen.families import FAMILIES
from mvgen.files import sha256_file
from mvgen.options import GridOptions, RenderOptions
from mvgen.planner import check_size, plan_video, precheck_lengths
from mvgen.prepare_loras import resolve_loras
from mvgen.timeline import FieldError, RenderPlan


@dataclass(frozen=True)
class Job:
    """A fully checked render job: nothing in it can be a user's mistake any more."""

    shotlist: LoadedShotList
    audio: AudioInfo
    audio_sha256: str
    model: ModelRef
    out: Path
    beats: BeatOverride | None = None  # a grid given by the user instead of detection
    # the shot list's LoRAs by (path, weight_name) as written: found, hashed, checked
    lora_files: dict[tuple[str, str | None], LoraFile] = field(default_factory=dict)
    # the shot list's stills (`image:`, cast members' pictures) by path as written: found, read, hashed
    stills: dict[str, StillFile] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what is allowed but probably not meant (a cast member in no shot)

    @property
    def manifest_path(self) -> Path:
        return manifest_path_for(self.out)


def manifest_path_for(out: Path) -> Path:
    return out.with_suffix(".json")


def with_levers(loaded: LoadedShotList, levers: dict[str, Any] | None) -> LoadedShotList:
    """The shot list with command-line `generation:` values (None: keep the file's)."""
    given = {k: v for k, v in (levers or {}).items() if v is not None}
    if not given:
        return loaded
    shots = loaded.shots
    generation = shots.generation.model_copy(update=given)
    return replace(loaded, shots=shots.model_copy(update={"generation": generation}))


def draft_path(out: Path) -> Path:
    """``OUT.draft.mp4``: a draft never replaces a final render."""
    return out.with_name(out.stem + ".draft.mp4")


def _resolve_out(loaded: LoadedShotList, out: str | None) -> Path:
    if out is not None:
        p = Path(out).expanduser()
    elif loaded.shots.output_settings().path:
        p = loaded.base_dir / Path(loaded.shots.output_settings().path).expanduser()
    else:
        p = loaded.path.resolve().with_suffix(".mp4")
    at = ("output",) if isinstance(loaded.shots.output, str) else ("output", "path")
    where = "--out" if out is not None else f"{locate(loaded, at)}: output"
    if p.is_dir():
        raise ConfigError(f"{where}: {p} is a folder; name an .mp4 file")
    if p.suffix.lower() != ".mp4":
        raise ConfigError(f"{where}: the output must be an .mp4 file (got {p.name!r})")
    if p.resolve() == loaded.path.resolve():
        raise ConfigError(f"{where}: the output would overwrite the shot list")
    parent = p.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"{where}: {parent} is not a folder")
    return draft_path(p) if loaded.shots.generation.quality == "draft" else p


def _resolve_audio(loaded: LoadedShotList, audio: str | None) -> Path:
    if audio is not None:
        return Path(audio).expanduser()
    settings = loaded.shots.audio_settings()
    if settings is not None:
        return loaded.base_dir / Path(settings.path).expanduser()
    raise ConfigError(
        f"{loaded.path}: no audio track: set `audio:` in the shot list or pass --audio TRACK",
    )


def resolve_override(loaded: LoadedShotList | None, grid: GridOptions | None) -> BeatOverride | None:
    """The user's beat grid, if any: the CLI's, else the shot list's ``audio:`` mapping."""
    if grid is not None and grid.bpm is not None:
        return BeatOverride(bpm=grid.bpm, offset_s=grid.offset_s or 0.0)
    if grid is not None and grid.beats_file is not None:
        return read_beats_file(Path(grid.beats_file).expanduser())
    settings = loaded.shots.audio_settings() if loaded is not None else None
    if settings is None:
        return None
    if settings.bpm is not None:
        return BeatOverride(
            bpm=settings.bpm, offset_s=settings.offset_s or 0.0, beats_per_bar=settings.beats_per_bar
        )
    if settings.beats_file is not None:
        path = loaded.base_dir / Path(settings.beats_file).expanduser()
        return read_beats_file(path, beats_per_bar=settings.beats_per_bar)
    return None


def prepare(
    shots_path: str | Path,
    *,
    audio: str | None = None,
    out: str | None = None,
    model: str | None = None,
    device: str = "auto",
    require_weights: bool = True,
    grid: GridOptions | None = None,
    levers: dict[str, Any] | None = None,
    writes: str | None = None,
    otio: Path | None = None,
) -> Job:
    """Check everything a render needs, cheaply: shot list, output path, audio, model, device.
    Every mistake found is reported at once (one ``ConfigError``, a line each).
    ``require_weights=False`` (planning) accepts a hub model whose weights are not downloaded.
    ``levers``: command-line values for `generation:` keys (quality, compile) that replace the file's.
    ``writes``: "render" or "preview": also refuse to overwrite a file at any of the paths that job
    writes (and ``otio``'s) which mvgen did not write (ownership.py)."""
    loaded = with_levers(load_shotlist(shots_path), levers)
    problems: list[MvgenError] = []  # bad input (exit 2): every one is reported
    setup: list[SetupError] = []  # the machine lacks something (exit 4): reported once the input is right

    def check(step: Callable[[], Any]) -> Any:
        try:
            return step()
        except (ConfigError, AudioError) as exc:
            problems.append(exc)
        except SetupError as exc:
            setup.append(exc)
        return None

    out_path = check(lambda: _resolve_out(loaded, out))
    info = check(lambda: probe_audio(_resolve_audio(loaded, audio)))
    if info is not None and out_path is not None and info.path.resolve() == out_path.resolve():
        problems.append(ConfigError(f"{out_path}: the output would overwrite the audio track"))
    model_spec = model or loaded.shots.model
    ref = check(lambda: _resolve_model(loaded, model_spec, model is not None, require_weights))
    known = ref
    if known is None and setup:  # its weights are missing: the shot list is still held to its rules
        with contextlib.suppress(MvgenError):
            known = _resolve_model(loaded, model_spec, model is not None, False)
    if known is not None:
        check(lambda: _located_step(loaded, lambda: check_size(loaded.shots, known.preset)))
        check(lambda: _located_step(loaded, lambda: precheck_lengths(loaded.shots)))
        for model_check in (_check_chain_model, _check_flf_model, _check_step_cache):
            check(lambda c=model_check: _located_step(
                loaded, lambda: c(loaded, known, model_spec, require_weights and ref is not None)))  # fmt: skip
    if writes is not None and out_path is not None:
        check(lambda: _check_outputs(loaded, out, out_path, writes, otio))
    override = check(lambda: resolve_override(loaded, grid))
    lora_files, lora_problems = resolve_loras(loaded, ref)
    for exc in lora_problems:
        (setup if isinstance(exc, SetupError) else problems).append(exc)
    stills, still_problems = resolve_stills(loaded)
    problems += still_problems
    if problems:
        raise _all_of(problems)
    if setup:
        raise setup[0]
    if device != "auto":
        from mvgen.generate.local import pick_device

        pick_device(device)
    warnings = tuple(
        f"{locate(loaded, ('cast', name))}: cast.{name}: in no shot (write {{{name}}} in a prompt, or "
        f"list it in a shot's `cast:`)"
        for name in loaded.shots.unused_cast()
    )
    return Job(loaded, info, sha256_file(info.path), ref, out_path, override, lora_files, stills, warnings)


def prepare_options(shots_path: str | Path, options: RenderOptions) -> Job:
    """``prepare`` for a render (or, with ``options.preview``, an animatic) with these options."""
    return prepare(
        shots_path, audio=options.audio, out=options.out, model=options.model, device=options.device,
        require_weights=not options.preview, grid=options.grid, levers=options.levers(),
        writes="preview" if options.preview else "render", otio=options.otio,
    )  # fmt: skip


def _resolve_model(loaded: LoadedShotList, spec: str, from_cli: bool, require_weights: bool) -> ModelRef:
    try:
        return resolve_model(spec, base_dir=loaded.base_dir, require_weights=require_weights)
    except ConfigError as exc:
        where = "--model" if from_cli else f"{locate(loaded, ('model',))}: model"
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None


def _located_step(loaded: LoadedShotList, step: Callable[[], Any]) -> Any:
    try:
        return step()
    except FieldError as exc:
        raise _located(loaded, exc) from None


def _check_outputs(
    loaded: LoadedShotList, out: str | None, out_path: Path, writes: str, otio: Path | None
) -> None:
    """Refuse a job that would overwrite a file mvgen did not write (see ownership.py)."""
    from mvgen.media.preview import preview_path
    from mvgen.otio_export import media_folder
    from mvgen.ownership import check_not_foreign
    from mvgen.report import report_paths

    video = preview_path(out_path) if writes == "preview" else out_path
    roles = {video: "the video" if writes != "preview" else "the animatic",
             manifest_path_for(video): "its manifest"}  # fmt: skip
    if writes != "preview":
        names = {
            "html": "the report page",
            "contact_sheet": "the contact sheet",
            "beat_plot": "the beat plot",
        }
        roles.update({path: names[kind] for kind, path in report_paths(video).items()})
    if otio is not None:
        roles.update({otio: "the OTIO timeline", media_folder(otio): "the OTIO timeline's shots"})
    job = f"{'previewing' if writes == 'preview' else 'rendering'} {loaded.path.name} to {video.name}"
    check_not_foreign(roles, manifest_path_for(video), job=job)


def _all_of(problems: list[MvgenError]) -> MvgenError:
    """The problems found while checking a job, as one error with a line each (exit 2)."""
    if len(problems) == 1:
        return problems[0]
    lines = [line for p in problems for line in (p.message, *p.more)]
    hints = list(dict.fromkeys(p.hint for p in problems if p.hint))
    return ConfigError(lines[0], more=tuple(lines[1:]), hint="; ".join(hints) or None)


def _i2v_at_hand(ref: ModelRef) -> bool:
    """Whether the model's image-to-video sibling can be loaded here without a download (long shots
    are then extended by chained segments; otherwise they are slowed to fit, as before)."""
    if not ref.preset.has_i2v:
        return False
    return ref.source == "builtin" or cached_hub_index(ref.preset.i2v_repo_id) is not None


def _i2v_needs(shots: ShotList, references: str | None = None) -> tuple[tuple[Any, ...], str, str] | None:
    """The first place in a shot list that needs the model's image-to-video sibling, why, and the
    other way out: a chained shot, a storyboard still, or a cast member's pictures (unless the
    model takes them as references of its own: ``references``, the family's mechanism)."""
    for i, shot in enumerate(shots.shots):
        if i > 0 and shot.image is None and (shot.transition or shots.timing.transition) == "chain":
            loc = ("shots", i, "transition") if shot.transition else ("timing", "transition")
            return loc, "chain needs an image-to-video model", "transition: cut"
        if shot.image is not None:
            why = "a storyboard still is a start frame: it needs an image-to-video model"
            return ("shots", i, "image"), why, "drop `image:`"
        pictured = [n for n in shots.members_of(shot) if shots.cast[n].images]
        if pictured and references is None:
            name = pictured[0]
            why = f"{name}'s pictures need a model that takes reference images (VACE) or a start frame (image-to-video)"
            return ("cast", name, "images"), why, f"drop {name}'s `images:` (its description still applies)"
    return None


def _check_chain_model(loaded: LoadedShotList, ref: ModelRef, spec: str, require_weights: bool) -> None:
    """Chained shots, storyboard stills and cast pictures need the model's image-to-video sibling:
    refuse a model without one before anything runs, and (for a render) one whose sibling's weights
    are not here."""
    need = _i2v_needs(loaded.shots, FAMILIES[ref.preset.family].references)
    if need is None:
        return
    loc, why, fix = need
    if not ref.preset.has_i2v:
        # cast pictures: a model that takes them as reference images of its own (VACE) can too
        can = sorted(n for n, p in all_presets().items()
                     if p.has_i2v or (loc[0] == "cast" and FAMILIES[p.family].references))  # fmt: skip
        raise FieldError(
            loc,
            f"{why}, and {spec!r} {'takes neither' if loc[0] == 'cast' else 'has none'}",
            hint=f"use a preset that can ({', '.join(can)}) or {fix}",
        )
    if require_weights:
        _require_sibling(ref, ref.preset.i2v_repo_id, spec, "the image-to-video sibling, for chained shots, "
                         "stills and cast pictures")  # fmt: skip


def _require_sibling(ref: ModelRef, repo: str | None, spec: str, what: str) -> None:
    """A hub model's sibling (``what`` it is and is for) must be in the local cache for a render."""
    if ref.source == "builtin" or repo is None:
        return
    try:
        require_cached(repo, spec, name=spec, family=ref.preset.family)
    except SetupError as exc:
        raise SetupError(f"{exc.message} ({what})",
                         hint=f"`mvgen models pull {spec} --i2v` on a machine with network access") from None  # fmt: skip


def _flf_needs(shots: ShotList) -> tuple[tuple[Any, ...], str, str] | None:
    """The first place in a shot list that needs a first-and-last-frame model, why, and the other
    way out: an end still, `end: next`, or a bridge (on a shot after the first)."""
    for i, shot in enumerate(shots.shots):
        if shot.end_image is not None:
            return ("shots", i, "end_image"), "a shot that ends on a still", "drop `end_image:`"
        if shot.end is not None:
            return ("shots", i, "end"), "a shot that ends on the next shot's first frame", "drop `end: next`"
        t = shot.transition or shots.timing.transition
        if i > 0 and is_bridge(t):
            loc = ("shots", i, "transition") if shot.transition else ("timing", "transition")
            return loc, "a bridge", "use `transition: {crossfade: 1}` (a blend done in assembly)"
    return None


def _check_step_cache(loaded: LoadedShotList, ref: ModelRef, spec: str, require_weights: bool) -> None:  # noqa: ARG001
    """A step cache the family's transformer has no hooks for is refused before anything loads."""
    cache, family = loaded.shots.generation.cache, FAMILIES[ref.preset.family]
    if cache != "none" and cache not in family.step_caches:
        can = " or ".join(family.step_caches + ("none",))
        raise FieldError(("generation", "cache"), f"{cache} does not run on {family.label} ({spec!r}): "
                         "diffusers' cache hooks do not know its transformer", hint=f"use cache: {can}")  # fmt: skip


def _check_flf_model(loaded: LoadedShotList, ref: ModelRef, spec: str, require_weights: bool) -> None:
    """End frames and bridges need a first-and-last-frame model: refuse a model without one before
    anything runs, and (for a render) one whose weights are not here."""
    need = _flf_needs(loaded.shots)
    if need is None:
        return
    loc, why, fix = need
    if not ref.preset.has_flf:
        can = sorted(n for n, p in all_presets().items() if p.has_flf)
        raise FieldError(loc, f"{why} is drawn by a first-and-last-frame model, and {spec!r} has none",
                         hint=f"use a preset that has one ({', '.join(can)}) or {fix}")  # fmt: skip
    if require_weights:
        _require_sibling(
            ref, ref.preset.flf_repo_id, spec, "the first-and-last-frame model, for end frames and bridges"
        )


def resolve_stills(loaded: LoadedShotList) -> tuple[dict[str, StillFile], list[MvgenError]]:
    """Every still the shot list names (`image:` on shots, cast members' `images:`), found, read and
    hashed, by its path as written; and every problem with them, each at its place."""
    shots = loaded.shots
    written = [((("shots", i, key), path)) for i, shot in enumerate(shots.shots)
               for key, path in (("image", shot.image), ("end_image", shot.end_image)) if path]  # fmt: skip
    written += [
        (("cast", name, "images", k), p) for name, m in shots.cast.items() for k, p in enumerate(m.images)
    ]
    files: dict[str, StillFile] = {}
    problems: list[MvgenError] = []
    for loc, path in written:
        if path in files:
            continue
        try:
            files[path] = find_still(path, loaded.base_dir, f"{locate(loaded, loc)}: {loc_str(loc)}")
        except ConfigError as exc:
            problems.append(exc)
    return files, problems


def analyze(job: Job, *, use_cache: bool = True) -> BeatGrid:
    if job.beats is not None:
        return override_grid(job.beats, job.audio.duration_s)
    from mvgen.audio.beats import analyze as analyze_audio

    return analyze_audio(job.audio, digest=job.audio_sha256, use_cache=use_cache)


def plan(job: Job, grid: BeatGrid) -> RenderPlan:
    try:
        return plan_video(
            job.shotlist.shots,
            grid,
            job.model.preset,
            model_name=job.model.name,
            extend_long=_i2v_at_hand(job.model),
            lora_files=job.lora_files,
            stills=job.stills,
        )
    except FieldError as exc:
        raise _located(job.shotlist, exc) from None


def _located(loaded: LoadedShotList, exc: FieldError) -> ConfigError:
    """A planner's FieldError as the user sees it: ``FILE:LINE:COL: field.path: message``."""
    return ConfigError(f"{locate(loaded, exc.loc)}: {loc_str(exc.loc)}: {exc.message}", hint=exc.hint)


def check_only(plan: RenderPlan, only: set[str] | None, job: Job) -> None:
    if not only:
        return
    known = {s.id for s in plan.shots}
    unknown = sorted(only - known)
    if unknown:
        raise ConfigError(
            f"--only: no shot with id {', '.join(map(repr, unknown))} in {job.shotlist.path}",
            hint=f"ids: {', '.join(sorted(known)[:20])}",
        )
