"""The command line: parse, call one api function, map the outcome to an exit code. No business logic."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback

import click

from mvgen import __version__
from mvgen.config.schema import BackendName, Quality
from mvgen.errors import ExitCode, MvgenError
from mvgen.exiting import exit_now
from mvgen.options import Device, Dtype, GridOptions, Offload, RenderOptions, choices

_debug_flag = False  # set by --debug for the current run only (never written to os.environ)


def _debug_enabled() -> bool:
    return _debug_flag or os.environ.get("MVGEN_DEBUG", "").strip() not in ("", "0", "false")


def _only(value: str | None) -> set[str] | None:
    if value is None:
        return None
    ids = {v.strip() for v in value.split(",") if v.strip()}
    if not ids:
        raise click.BadParameter("give one or more shot ids separated by commas", param_hint="--only")
    return ids


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mvgen")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs (or set MVGEN_DEBUG=1).")
def cli(debug: bool) -> None:
    """mvgen: a YAML shot list and a music track in, a beat-cut text-to-video music video out."""
    global _debug_flag
    _debug_flag = debug
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.DEBUG if _debug_enabled() else logging.WARNING)


_audio_opt = click.option("--audio", "-a", metavar="TRACK", help="Audio track (overrides `audio:`).")
_model_opt = click.option(
    "--model", "-m", metavar="MODEL", help="Preset, repo id or folder (overrides `model:`)."
)
_shots_arg = click.argument("shots", type=click.Path(dir_okay=True, path_type=str))


def _grid_options(f):
    """--bpm/--offset/--beats-file: a beat grid that replaces detection."""
    f = click.option(
        "--beats-file",
        metavar="FILE",
        help="Beat times, one per line (optional 2nd column: position in bar).",
    )(f)
    f = click.option("--offset", type=float, metavar="SECONDS", help="Time of the first beat, with --bpm.")(f)
    f = click.option("--bpm", type=float, help="Use this fixed tempo instead of detecting beats.")(f)
    return f


def _check_png(ctx, param, value):  # noqa: ARG001
    if value is not None and not value.lower().endswith(".png"):
        raise click.BadParameter(f"{value!r} must end in .png")
    return value


_plot_opt = click.option(
    "--plot",
    metavar="FILE.png",
    callback=_check_png,
    help="Also draw the beat grid (and cuts) into this PNG.",
)


def _grid(bpm, offset, beats_file):
    return GridOptions.given(bpm, offset, beats_file)


def _render_options(f):
    opts = [
        _model_opt,
        click.option("--force", is_flag=True, help="Regenerate every shot, ignoring the cache."),
        click.option("--only", metavar="IDS", help="Regenerate just these shots (comma-separated ids)."),
        click.option("--device", type=click.Choice(choices(Device)), default="auto", show_default=True),
        click.option(
            "--offload",
            type=click.Choice(choices(Offload)),
            default="auto",
            show_default=True,
            help="CUDA memory: keep the model on the GPU (none), move each component in while it runs "
            "(model), or each layer (sequential, slowest); auto picks from free VRAM and the preset.",
        ),
        click.option(
            "--dtype",
            type=click.Choice(choices(Dtype)),
            help="Weights' dtype on CUDA (default: the preset's; CPU always float32).",
        ),
        click.option(
            "--keep-going", is_flag=True, help="Go on past a failed shot or job (exit 3 if any failed)."
        ),
        click.option(
            "--wait", is_flag=True, help="Wait for another mvgen rendering the same output (else exit 75)."
        ),
        click.option(
            "--log-format",
            type=click.Choice(["auto", "text", "json"]),
            default="auto",
            show_default=True,
            help="auto: a live display on a terminal, plain timestamped lines otherwise; json: JSON lines.",
        ),
        click.option("--log-file", metavar="PATH", help="Also append the log (plain lines or JSON) to PATH."),
        click.option("--quiet", "-q", is_flag=True, help="Print only the final line."),
        click.option(
            "--backend",
            type=click.Choice(choices(BackendName)),
            help="Where shots are generated: this machine, or a Ray cluster (default: the shot list's `backend:`, else local).",
        ),
        click.option(
            "--ray-address",
            metavar="ADDR",
            help="Ray cluster to join (auto: the running one); default: start a local Ray.",
        ),
        click.option(
            "--ray-workers",
            type=click.IntRange(1, 1024),
            metavar="N",
            help="Ray workers (default: one per GPU in the cluster, or per CPU without GPUs).",
        ),
        click.option(
            "--quality",
            type=click.Choice(sorted(choices(Quality))),
            help="draft: a third of the steps at half the size, same seeds and cuts, blended rather than "
            "flow-retimed, to OUT.draft.mp4 (overrides `generation.quality`).",
        ),
        click.option(
            "--compile/--no-compile",
            "compile_",
            default=None,
            help="torch.compile the transformer's blocks (CUDA; overrides `generation.compile`).",
        ),  # fmt: skip
        click.option(
            "--no-overlap",
            is_flag=True,
            help="Encode after all shots are generated instead of beside the generation.",
        ),  # fmt: skip
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _options(*, only, compile_, no_overlap, **given) -> RenderOptions:
    """The command line's render options, as one record (api, batch and pipeline take it)."""
    ids = _only(only)
    return RenderOptions(only=frozenset(ids or ()), compile=compile_, overlap=not no_overlap, **given)


def _run_jobs(sources, options: RenderOptions, *, log_format, log_file, quiet, summary_json, batch_mode):
    from mvgen import api
    from mvgen.console import StopFlag, make_console, print_summary

    console = make_console(log_format, quiet=quiet, log_file=log_file)
    _state.log_stream = console.log_stream
    try:
        with StopFlag() as stop:
            result = api.render_batch(list(sources), options, progress=console, should_stop=stop)
    finally:
        console.close()
    single = len(result.jobs) == 1 and not batch_mode
    if summary_json:
        click.echo(json.dumps([j.to_json() for j in result.jobs], indent=2))
    elif single:
        if result.jobs[0].status == "ok":
            click.echo(result.jobs[0].out)
    else:
        print_summary(result.jobs, sys.stdout)
    code = result.exit_code
    if code != ExitCode.OK:
        # errors always go to stderr, whatever stdout carries
        if single:
            job = result.jobs[0]
            lines = job.errors or [job.error or job.status]
            raise _JobFailed(MvgenError(lines[0], hint=job.hint, more=tuple(lines[1:])), code)
        from mvgen.console import print_error

        for j in result.jobs:
            for line in j.errors or ([j.error] if j.error else []):
                print_error(f"{j.shotlist}: {j.status}: {line}", log_stream=_state.log_stream)
    raise click.exceptions.Exit(int(code))


class _JobFailed(Exception):
    """A job failed: its error (every line of it) and the exit code of the whole run."""

    def __init__(self, error: MvgenError, code: int) -> None:
        super().__init__(error.message)
        self.error, self.code = error, code


class _State:
    log_stream = None


_state = _State()


@cli.command()
@click.argument("shots", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=str))
@_audio_opt
@click.option(
    "--out", "-o", metavar="OUT.mp4", help="Output video (overrides `output:`; one shot list only)."
)
@_render_options
@_grid_options
@click.option(
    "--json", "summary_json", is_flag=True, help="Print one JSON object per job on stdout at the end."
)
@click.option(
    "--otio", metavar="PATH.otio",
    help="Also write an OpenTimelineIO timeline of the edit (one clip per shot, media beside it; one shot list only).",
)  # fmt: skip
@click.option(
    "--preview", is_flag=True,
    help="Write an animatic (OUT.preview.mp4: a card per shot, real cuts and audio) instead; no model runs.",
)  # fmt: skip
def render(shots, audio, out, model, force, only, device, offload, dtype, keep_going, wait, log_format, log_file, quiet,
           backend, ray_address, ray_workers, quality, compile_, no_overlap, bpm, offset, beats_file, summary_json, otio,
           preview):  # fmt: skip
    """Render SHOTS (one or more shot lists) to music videos."""
    options = _options(
        audio=audio, out=out, model=model, force=force, only=only, device=device, offload=offload, dtype=dtype,
        keep_going=keep_going, wait=wait, backend=backend, ray_address=ray_address, ray_workers=ray_workers,
        quality=quality, compile_=compile_, no_overlap=no_overlap, grid=_grid(bpm, offset, beats_file),
        preview=preview, otio=otio,
    )  # fmt: skip
    _run_jobs(shots, options, log_format=log_format, log_file=log_file, quiet=quiet, summary_json=summary_json,
              batch_mode=len(shots) > 1)  # fmt: skip


@cli.command()
@click.argument("sources", nargs=-1, required=True, metavar="DIR_OR_GLOB...")
@_render_options
@click.option(
    "--json", "summary_json", is_flag=True, help="Print one JSON object per job on stdout at the end."
)
def batch(sources, model, force, only, device, offload, dtype, keep_going, wait, log_format, log_file, quiet,
          backend, ray_address, ray_workers, quality, compile_, no_overlap, summary_json):  # fmt: skip
    """Render every shot list in folders or glob patterns, in order, with a summary."""
    options = _options(
        model=model, force=force, only=only, device=device, offload=offload, dtype=dtype, keep_going=keep_going,
        wait=wait, backend=backend, ray_address=ray_address, ray_workers=ray_workers, quality=quality,
        compile_=compile_, no_overlap=no_overlap,
    )  # fmt: skip
    _run_jobs(sources, options, log_format=log_format, log_file=log_file, quiet=quiet, summary_json=summary_json,
              batch_mode=True)  # fmt: skip


@cli.command()
@_shots_arg
@_audio_opt
@_model_opt
@_grid_options
def validate(shots, audio, model, bpm, offset, beats_file) -> None:
    """Check SHOTS and everything it names, render nothing."""
    from mvgen import api

    job = api.load_project(
        shots, audio=audio, model=model, grid=_grid(bpm, offset, beats_file), writes="render"
    )
    plan = api.plan_video(job)
    for warning in job.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"ok: {job.shotlist.path}: {len(job.shotlist.shots.shots)} shots -> {len(plan.shots)} slots, "
        f"{plan.duration_s:.2f}s at {plan.width}x{plan.height} {plan.fps:g} fps, model {job.model.name}"
    )


@cli.command()
@_shots_arg
@_audio_opt
@_model_opt
@_grid_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@_plot_opt
def plan(shots, audio, model, bpm, offset, beats_file, as_json, plot) -> None:
    """Print the cut sheet: every shot's start, end, beats and frames."""
    from mvgen import api

    job = api.load_project(
        shots, audio=audio, model=model, require_weights=False, grid=_grid(bpm, offset, beats_file)
    )
    grid = api.beat_grid(job)
    for warning in job.warnings:
        click.echo(f"warning: {warning}", err=True)
    _warn_uncertain(job.audio.path, grid)
    p = api.plan_video(job, grid)
    if plot:
        api.plot_grid(job.audio.path, grid, plot, plan=p)
        click.echo(f"plot: {plot}", err=as_json)
    sheet = api.cut_sheet(job, p)
    if as_json:
        click.echo(json.dumps(sheet.to_json(), indent=2))
        return
    from mvgen.console import print_cut_sheet

    print_cut_sheet(sheet, str(job.shotlist.path), sys.stdout)


@cli.command()
@_shots_arg
@click.argument("shot_id", metavar="SHOT_ID")
@click.argument("take", type=int)
def pick(shots, shot_id, take) -> None:
    """Use take TAKE (1-based, as in the manifest) of shot SHOT_ID from now on: writes its seed and
    `takes: 1` into SHOTS. The take is in the cache, so the next render generates nothing for it."""
    from mvgen import api

    seed, path = api.pick_take(shots, shot_id, take)
    click.echo(f"{path}: shot {shot_id} pinned to take {take} (seed {seed}, takes: 1)")


@cli.command()
@click.argument("audio", type=click.Path(dir_okay=True, path_type=str))
@_grid_options
@click.option("--json", "as_json", is_flag=True, help="Print the grid as JSON.")
@_plot_opt
def beats(audio, bpm, offset, beats_file, as_json, plot) -> None:
    """Find the tempo, beats, downbeats and sections of AUDIO (or show the grid an override gives)."""
    from mvgen import api

    grid = api.analyze_audio(audio, grid=_grid(bpm, offset, beats_file))
    _warn_uncertain(audio, grid)
    if plot:
        api.plot_grid(audio, grid, plot)
    if as_json:
        click.echo(json.dumps(grid.to_json()))
        return
    if plot:
        click.echo(f"plot: {plot}")
    click.echo(f"{audio}: {grid.tempo_bpm:.2f} BPM, {grid.beats_per_bar}/4, {grid.duration_s:.2f}s")
    click.echo(f"beats: {len(grid.beats_s)} (first {', '.join(f'{t:.3f}' for t in grid.beats_s[:4])} ...)")
    click.echo(
        f"bars: {len(grid.downbeats_s)} of {grid.beats_per_bar} beats (first downbeat {grid.downbeats_s[0]:.3f}s)"
    )
    click.echo("sections: " + (", ".join(f"{t:.2f}s" for t in grid.sections_s) or "none found"))
    if grid.tempo_curve:
        lo, hi = grid.tempo_range_bpm
        click.echo(
            f"tempo moves: {lo:.1f}-{hi:.1f} BPM (10th-90th percentile; the median is the tempo above)"
        )
    if grid.confidence is not None:
        c = grid.confidence
        click.echo(
            f"confidence: {c.overall:.2f} (onsets {c.onsets:.2f}, tempo {c.tempo:.2f}, octave {c.octave:.2f}"
            + (f" against {c.alternative_bpm:.1f} BPM)" if c.alternative_bpm else ")")
        )


def _warn_uncertain(audio, grid) -> None:
    """The uncertain-grid warning on stderr (so ``--json`` output stays clean)."""
    if (doubt := grid.uncertainty()) is not None:
        click.echo(f"warning: {audio}: {doubt}", err=True)


@cli.command()
@click.option("--path", "path_only", is_flag=True, help="Print where the file is instead of its text.")
def reference(path_only) -> None:
    """Print the reference shot list: every key, with its default and what it does."""
    from mvgen.config.presets import reference_path

    path = reference_path()
    click.echo(str(path) if path_only else path.read_text(encoding="utf-8"), nl=path_only)


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the presets as JSON.")
@click.pass_context
def models(ctx, as_json) -> None:
    """List model presets: family, repo id, native fps and size, frame rule, local or not.

    `mvgen models pull NAME` downloads a preset's weights."""
    if ctx.invoked_subcommand is not None:
        return
    from mvgen.config.presets import all_presets, cached_hub_index

    rows = []
    for p in all_presets().values():
        local = True if p.builtin else (p.repo_id is not None and cached_hub_index(p.repo_id) is not None)
        rows.append({**p.model_dump(), "frame_rule": p.frame_rule(), "local": local})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    w = max(len(r["name"]) for r in rows)  # frames "/97": one run slides 97-frame windows (diffusion forcing)
    cols = f"{'family':<10} {'fps':>4} {'size':>10} {'frames':>13} {'VRAM':>6} {'local':<5}  repo"
    click.echo(f"{'name':<{w}} {cols}")
    for r in rows:
        size, window = f"{r['width']}x{r['height']}", f"/{r['window_frames']}" if r["window_frames"] else ""
        frames = f"{r['frame_rule']}<={r['max_frames']}{window}"
        click.echo(
            f"{r['name']:<{w}} {r['family']:<10} {r['fps']:>4g} {size:>10} {frames:>13} {r['vram_gb']:>5.1f}G "
            f"{'yes' if r['local'] else 'no':<5}  {r['repo_id'] or '(built in)'}"
        )


@models.command("pull")
@click.argument("name")
@click.option(
    "--i2v", "with_i2v", is_flag=True, help="Also fetch its image-to-video and first-and-last-frame models."
)
def models_pull(name, with_i2v) -> None:
    """Download NAME's weights (a preset or a repo id) into the Hugging Face cache."""
    from mvgen.config.presets import pull

    folders = pull(name, with_i2v=with_i2v)
    if not folders:
        click.echo(f"{name}: built in, nothing to download")
    for folder in folders:
        click.echo(f"{name}: {folder}")


@cli.group()
def loras() -> None:
    """LoRA files: `mvgen loras pull SHOTS` downloads a shot list's hub LoRAs."""


@loras.command("pull")
@_shots_arg
def loras_pull(shots) -> None:
    """Download the Hugging Face LoRAs SHOTS names (`path: owner/repo` + `weight_name:`) into the
    Hugging Face cache, where renders find them offline."""
    from mvgen.config.loader import load_shotlist
    from mvgen.prepare_loras import pull_loras

    lines = pull_loras(load_shotlist(shots))
    for line in lines or ["no LoRAs in this shot list"]:
        click.echo(line)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and exit with the documented code."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    code = run(argv)
    exit_now(code, _state.log_stream)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI in this process and return the exit code (tests and embedding call this)."""
    global _debug_flag
    from mvgen.batch import BatchInputError
    from mvgen.console import print_error

    _debug_flag = False
    _state.log_stream = None
    try:
        # standalone_mode=False: click returns the code of a click.exceptions.Exit instead of exiting
        rv = cli.main(args=argv, prog_name="mvgen", standalone_mode=False)
        return rv if isinstance(rv, int) else ExitCode.OK
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:  # bare `mvgen`: its help
            click.echo(exc.ctx.get_help())
            return ExitCode.OK
        cmd = exc.ctx.command_path if exc.ctx else "mvgen"
        print_error(exc.format_message(), hint=f"see `{cmd} --help`")
        return ExitCode.BAD_INPUT
    except _JobFailed as exc:
        print_error(exc.error, log_stream=_state.log_stream)
        return exc.code
    except BatchInputError as exc:
        if _debug_enabled():
            traceback.print_exc()
        for err in exc.errors:
            print_error(err, log_stream=_state.log_stream)
        return exc.exit_code
    except MvgenError as exc:
        if _debug_enabled():
            traceback.print_exc()
        print_error(exc, log_stream=_state.log_stream)
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        print_error("interrupted; finished shots are cached, re-run to resume")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as exc:  # a bug: say so in one line, traceback with --debug
        if _debug_enabled():
            traceback.print_exc()
        print_error(
            f"internal error: {type(exc).__name__}: {exc}",
            hint="re-run with --debug for the traceback, and please report it",
        )
        return ExitCode.FAILURE
