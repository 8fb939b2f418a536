"""The ``local`` backend: one diffusers pipeline on one device, loaded once, shots in sequence."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mvgen.config.presets import ModelRef, pull_hint
from mvgen.errors import GenerationError, SetupError
from mvgen.families import get_family
from mvgen.files import atomic_path
from mvgen.generate.base import Notify, ShotRequest, StepCallback
from mvgen.generate.calls import fit_frames, run_pipeline
from mvgen.generate.weights import folder_fingerprint, quiet_libraries

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise SetupError(
            f"--device {requested}: no CUDA GPU is available here", hint="use --device cpu or auto"
        )
    if requested == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise SetupError("--device mps: Apple MPS is not available here", hint="use --device cpu or auto")
    return requested


def _index_class(index: Path | None) -> str | None:
    """The pipeline class a model_index.json names (None: no readable index)."""
    import json

    try:
        return json.loads(index.read_text(encoding="utf-8")).get("_class_name") if index else None
    except (OSError, ValueError):
        return None


# Headroom over the preset's VRAM estimate for activations at other sizes and CUDA's own use.
VRAM_HEADROOM = 1.15


def choose_offload(requested: str, free_gb: float, need_gb: float) -> str:
    """The memory lever for a CUDA load: the requested one, or for ``auto`` the fastest that fits.
    Whole model on the GPU when the preset's estimate (plus headroom) fits the free memory; model
    offload (one component at a time: the transformer is most of it) when about half fits; else
    sequential offload (layer by layer: slow, but runs a 14B model on a 12 GB card)."""
    if requested != "auto":
        return requested
    if need_gb * VRAM_HEADROOM <= free_gb:
        return "none"
    if need_gb * 0.6 <= free_gb:
        return "model"
    return "sequential"


KEYFRAME_FRAMES = 5  # the clip a shot drawn to an end frame without a start takes its start from
SIBLING_NAMES = {"i2v": "image-to-video", "flf": "first-and-last-frame"}  # the main model's siblings


class LocalBackend:
    name = "local"

    def __init__(
        self, model: ModelRef, *, device: str = "auto", offload: str = "auto", dtype: str | None = None
    ) -> None:
        self.model = model
        self.requested_device = device
        self.requested_offload = offload
        self.requested_dtype = dtype
        self.offload = "none"
        self.device = "cpu"
        self.pipe = None
        self.siblings: dict[str, Any] = {}  # "i2v" / "flf" -> the loaded image-to-video pipeline
        self.low_memory = False
        self._identity: dict[str, str] | None = None
        self._revisions: dict[str, str] = {}  # "i2v" / "flf" -> its weights' revision
        self._where: tuple[str, str] | None = None
        self.family = get_family(model.preset.family)
        self._levers: dict[int, Any] = {}  # id(pipeline) -> its LeverState
        self._loras: dict[int, Any] = {}  # id(pipeline) -> its LoraSwitch (generate/loras.py)

    @property
    def loaded(self) -> bool:
        return self.pipe is not None

    def _location(self) -> tuple[str, str]:
        """(what to pass to from_pretrained, revision string), computed once: the fingerprint reads
        the model folder, and both ``identity`` and ``load`` need it."""
        if self._where is None:
            self._where = self._find_location()
        return self._where

    def _find_location(self) -> tuple[str, str]:
        if self.model.source == "builtin":
            from mvgen.generate.tiny import ensure_tiny

            folder = ensure_tiny(self.model.preset.family)
            return str(folder), "sha256:" + folder_fingerprint(folder)
        if self.model.source == "local":
            folder = Path(self.model.location)
            return str(folder), "sha256:" + folder_fingerprint(folder)
        from mvgen.config.presets import cached_hub_index

        index = cached_hub_index(self.model.location)
        revision = index.parent.name if index is not None else "main"
        return self.model.location, revision

    def identity(self) -> dict[str, str]:
        if self._identity is None:
            _, revision = self._location()
            model_id = self.model.location if self.model.source != "local" else self.model.spec
            self._identity = {"id": model_id, "name": self.model.name, "revision": revision}
        return self._identity

    def i2v_revision(self) -> str:
        """A chained shot's pixels depend on the image-to-video weights too: their content hash (a
        folder) or hub snapshot, computed once and without loading anything."""
        return self._revision_of("i2v")

    def flf_revision(self) -> str:
        """Likewise the first-and-last-frame model's, for shots drawn to an end frame."""
        return self._revision_of("flf")

    def _revision_of(self, role: str) -> str:
        if role not in self._revisions:
            location, index = self._sibling_location(role)
            if self.model.source == "builtin" or (index is None and Path(location).is_dir()):
                self._revisions[role] = "sha256:" + folder_fingerprint(Path(location))
            else:
                self._revisions[role] = index.parent.name if index is not None else "main"
        return self._revisions[role]

    def load(self) -> None:
        if self.pipe is not None:
            return
        import torch

        quiet_libraries()
        self.device = pick_device(self.requested_device)
        dtype_name = self.requested_dtype or self.model.preset.dtype
        dtype = getattr(torch, dtype_name) if self.device == "cuda" else torch.float32
        location, _ = self._location()
        log.info("loading %s on %s (%s)", location, self.device, dtype)
        pipe = self._load_pipeline(location, dtype)
        self.offload = "none"
        if self.device != "cuda" and self.requested_offload in ("model", "sequential"):
            log.warning(
                "--offload %s applies to CUDA only; ignored on %s", self.requested_offload, self.device
            )
        if self.device == "cuda":
            free_b, _ = torch.cuda.mem_get_info()
            self.offload = choose_offload(self.requested_offload, free_b / 2**30, self.model.preset.vram_gb)
        self.pipe = self._place(pipe)

    def _load_pipeline(self, location: str, dtype, *, cls_name: str = "DiffusionPipeline"):
        import diffusers

        try:
            pipe = getattr(diffusers, cls_name).from_pretrained(location, dtype=dtype, use_safetensors=True)
        except OSError as exc:
            raise SetupError(
                f"model {self.model.spec!r}: cannot load {location}: {str(exc).splitlines()[0]}",
                hint=pull_hint(location, self.model.spec) if self.model.source == "hub" else None,
            ) from None
        pipe.set_progress_bar_config(disable=True)  # mvgen draws the one progress display
        if self.family.vae_fp32 and getattr(pipe, "vae", None) is not None:
            import torch

            pipe.vae.to(dtype=torch.float32)  # the family's VAE decodes in float32 (the rest in `dtype`)
        return pipe

    def _place(self, pipe):
        """Put a loaded pipeline on the device with the chosen memory lever."""
        if self.offload == "model":
            pipe.enable_model_cpu_offload()
        elif self.offload == "sequential":
            pipe.enable_sequential_cpu_offload()
        else:
            pipe = pipe.to(self.device)
        if self.device == "cpu":
            from mvgen.generate.levers import cpu_channel_norms, onednn_conv3d

            onednn_conv3d(pipe)
            cpu_channel_norms(pipe)
        if self.offload != "none":
            # Offloading says memory is short: decode the video in tiles too.
            pipe.vae.enable_tiling()
        return pipe

    def _sibling_location(self, role: str) -> tuple[str, Path | None]:
        """(what to pass to from_pretrained, its model_index.json when it is here) of the model's
        image-to-video sibling (``role`` "i2v") or its first-and-last-frame model ("flf")."""
        if self.model.source == "builtin":
            from mvgen.generate.tiny import ensure_tiny

            folder = ensure_tiny(self.model.preset.family).parent
            folder /= (self.family.tiny_flf or "flf") if role == "flf" else role
            return str(folder), folder / "model_index.json"
        preset = self.model.preset
        repo = preset.i2v_repo_id if role == "i2v" else preset.flf_repo_id
        if repo is None:  # prepare() refuses such shot lists for such models; this is a safety net
            raise SetupError(f"model {self.model.spec!r} has no {SIBLING_NAMES[role]} model")
        from mvgen.config.presets import cached_hub_index

        return repo, cached_hub_index(repo)

    def _sibling(self, role: str):
        """The model's image-to-video sibling ("i2v": chains, stills) or first-and-last-frame model
        ("flf": end frames), loaded on first use, weights once: the other sibling's pipeline when
        repo and class match (Wan 2.2 A14B), the main one's modules for a class on its own weights
        (LTX's condition pipeline, ``from_pipe``)."""
        if role not in self.siblings:
            location, index = self._sibling_location(role)
            # One repo, both tasks (Wan 2.2 TI2V, LTX-Video): its model_index names the text-to-video
            # class, and the family's image-to-video class loads the same weights. Decided from the
            # index before loading, so that gigabytes of weights are read once.
            cls_name = self.family.sibling_class(role, _index_class(index))
            same = [p for r, p in self.siblings.items()
                    if self._sibling_location(r)[0] == location and type(p).__name__ == cls_name]  # fmt: skip
            self.siblings[role] = same[0] if same else self._load_sibling(role, location, cls_name)
        return self.siblings[role]

    def _load_sibling(self, role: str, location: str, cls_name: str):
        import diffusers
        import torch

        log.info("loading %s %s", SIBLING_NAMES[role], location)
        if location == self._location()[0] and (
            role == "flf" or cls_name in self.family.same_weights.values()
        ):
            # another class on the main pipeline's own weights: its modules, already placed
            pipe = getattr(diffusers, cls_name).from_pipe(self.pipe)
            pipe.set_progress_bar_config(disable=True)
            return self._place(pipe) if self.offload != "none" else pipe
        dtype = self.pipe.dtype if self.device == "cuda" else torch.float32
        return self._place(self._load_pipeline(location, dtype, cls_name=cls_name))

    def _free(self) -> None:
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # freeing memory is best-effort
            pass

    def _low_memory(self, notify: Notify) -> None:
        """The lower-memory settings tried once after an out-of-memory: VAE tiling, and on CUDA
        model offload (each component moves to the GPU only while it runs)."""
        if self.low_memory:
            return
        self.low_memory = True
        for pipe in (self.pipe, *self.siblings.values()):
            pipe.vae.enable_tiling()
        if self.device == "cuda" and self.offload == "none":
            self.offload = "model"
            self.pipe.enable_model_cpu_offload()
            notify("out of GPU memory: retrying with VAE tiling and model CPU offload")
        else:
            notify("out of memory: retrying with VAE tiling")

    def _pipe_for(self, request: ShotRequest):
        if request.last_image is not None:
            return self._sibling("flf")
        return self._sibling("i2v") if request.image is not None else self.pipe

    def _sample(self, request: ShotRequest, on_step: StepCallback, notify: Notify = lambda message: None):
        import torch

        from mvgen.generate.levers import LeverState, apply_levers

        pipe = self._pipe_for(request)
        state = self._levers.setdefault(id(pipe), LeverState())
        ratios = None
        if request.step_cache == "magcache":
            ratios = self._magcache_ratios(pipe, state, request, on_step, notify)
        apply_levers(pipe, state, request, self.device, notify, magcache_ratios=ratios)
        if request.loras or id(pipe) in self._loras:
            from mvgen.generate.loras import LoraSwitch

            switch = self._loras.setdefault(id(pipe), LoraSwitch(self.model.name))
            switch.use(pipe, request.loras, fuse=request.fuse_loras)
        with torch.inference_mode():
            out = self._call(pipe, request, on_step)
        return self.family.finish_latents(pipe, out.frames, request)

    def _call(self, pipe, request: ShotRequest, on_step: StepCallback):
        """One run of the pipeline for ``request``, to latents."""
        import torch
        from PIL import Image

        extra = self.family.call_extras(request)
        if request.last_image is not None:
            start = request.image if request.image is not None else self._keyframe(request)
            extra.update(
                self.family.flf_call(Image.fromarray(start), Image.fromarray(request.last_image), request)
            )
        elif request.image is not None:
            extra["image"] = Image.fromarray(request.image)
        conditioned = request.image is not None or request.last_image is not None
        frames = request.num_frames + (self.family.i2v_dropped_frames if conditioned else 0)
        return run_pipeline(pipe, self.family, request, dict(
            prompt=request.prompt, negative_prompt=request.negative or None, height=request.height,
            width=request.width, num_frames=frames, num_inference_steps=request.steps,
            guidance_scale=request.guidance, generator=torch.Generator(device="cpu").manual_seed(request.seed),
            output_type="latent", max_sequence_length=request.max_sequence_length, **extra), on_step)  # fmt: skip

    def _keyframe(self, request: ShotRequest) -> np.ndarray:
        """The start frame of a shot drawn to an end frame that has none of its own (no still, not
        chained): the first frame of a short clip of the text-to-video model, same prompt and seed
        (``KEYFRAME_FRAMES``: two latent frames' work on Wan; a lone frame is an image, which
        video-trained small models paint worse), without LoRAs (the shot's are the first-and-last-frame
        model's)."""
        import torch

        one = replace(
            request, num_frames=self.model.preset.valid_frames(KEYFRAME_FRAMES), last_image=None, image=None
        )
        # without LoRAs, whatever shot ran before it: the same start every time
        if id(self.pipe) in self._loras:
            self._loras[id(self.pipe)].use(self.pipe, ())
        with torch.inference_mode():
            out = self._call(self.pipe, one, lambda done, total: None)
        latents = self.family.finish_latents(self.pipe, out.frames, one)
        return self.family.decode(self.pipe, latents, one.seed)[0]

    def _magcache_ratios(
        self, pipe, state, request: ShotRequest, on_step: StepCallback, notify: Notify
    ) -> list[float]:
        """The model's MagCache ratios at the request's steps, guidance and size: read from the cache
        folder, or measured now (one short uncached sample, reported) and kept there."""
        import torch

        from mvgen.generate import magcache
        from mvgen.generate.levers import apply_levers

        kind = "flf" if request.last_image is not None else "i2v" if request.image is not None else "t2v"
        identity = dict(self.identity())
        if kind != "t2v":
            identity["revision"] = self._revision_of(kind)
        path = magcache.ratios_path(identity, kind, request)
        ratios = magcache.load(path, request.steps)
        if ratios is not None:
            return ratios
        if getattr(pipe, "transformer_2", None) is not None:  # Wan 2.2 A14B: high- and low-noise experts
            raise GenerationError(
                f"generation.cache: magcache: {self.model.name} hands its steps from one transformer to "
                "another part-way; MagCache follows one transformer through all the steps",
                hint="use cache: fbc (or none) with this model",
            )
        frames = self.model.preset.valid_frames(magcache.CALIBRATION_FRAMES)  # the same for every shot
        probe = magcache.calibration_request(request, frames)
        notify(
            f"MagCache: measuring {self.model.name}{f' ({SIBLING_NAMES[kind]})' if kind != 't2v' else ''} at "
            f"{request.steps} steps, {request.width}x{request.height} (a {frames}-frame sample, once; kept in the cache)"
        )
        apply_levers(pipe, state, probe, self.device, notify)  # the cache off while measuring
        t0 = time.monotonic()

        def run(end_of_step) -> None:
            def step_end(done, total):
                end_of_step()
                on_step(0, request.steps)  # the shot's progress stays at 0; a stop still stops it

            with torch.inference_mode():
                self._call(pipe, probe, step_end)

        ratios = magcache.measure(pipe.transformer, run)
        if len(ratios) != request.steps:
            raise GenerationError(
                f"MagCache: {self.model.name} ran {len(ratios)} transformer steps for {request.steps} requested",
                hint="use cache: fbc with this model",
            )
        try:
            magcache.save(path, ratios, {
                "model": identity.get("id"), "revision": identity.get("revision"), "pipeline": kind,
                "steps": request.steps, "guidance": request.guidance, "size": [request.width, request.height],
                "frames": frames, "device": self.device, "seconds": round(time.monotonic() - t0, 2),
            })  # fmt: skip
        except OSError as exc:  # a read-only or full cache: this render still uses them
            notify(f"MagCache: could not keep the measured ratios in {path.parent} ({exc.strerror or exc}); "
                   "the next render measures them again")  # fmt: skip
        log.info("MagCache ratios for %s: %s", self.model.name, ratios)
        return ratios

    def generate(
        self,
        request: ShotRequest,
        on_step: StepCallback,
        *,
        latents_path: Path | None = None,
        notify: Notify = lambda message: None,
    ) -> np.ndarray:
        """Sample, save the denoised latents (when ``latents_path`` is given), decode. Latents found
        at ``latents_path`` skip sampling: a crash or out-of-memory in the decode never costs the
        sampling again. One out-of-memory in either phase is retried with lower-memory settings."""
        import torch

        if self.pipe is None:
            self.load()
        latents = None
        if latents_path is not None and latents_path.is_file():
            from safetensors.torch import load_file

            latents = load_file(str(latents_path))["latents"]
            notify(f"shot {request.shot_id!r}: reusing its saved latents (decode only)")
        if latents is None:
            try:
                latents = self._sample(request, on_step, notify)
            except torch.OutOfMemoryError:
                self._free()
                self._low_memory(notify)
                try:
                    latents = self._sample(request, on_step, notify)
                except torch.OutOfMemoryError as exc:
                    raise self._oom_error(request, exc) from exc
            if latents_path is not None:
                from safetensors.torch import save_file

                with atomic_path(latents_path, suffix=".safetensors") as tmp:
                    save_file({"latents": latents.detach().to("cpu").contiguous()}, str(tmp))
        try:
            frames = self.family.decode(self._pipe_for(request), latents, request.seed)
        except torch.OutOfMemoryError:
            self._free()
            vae = self._pipe_for(request).vae
            if vae.use_tiling:
                raise
            vae.enable_tiling()
            notify(
                f"shot {request.shot_id!r}: out of memory in the VAE decode: retrying the decode with tiling"
            )
            try:
                frames = self.family.decode(self._pipe_for(request), latents, request.seed)
            except torch.OutOfMemoryError as exc:
                raise self._oom_error(request, exc) from exc
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise GenerationError(
                f"shot {request.shot_id!r}: the pipeline returned frames of shape {frames.shape}"
            )
        if frames.dtype != np.uint8:  # the families' decode rounds to 8 bits on the device
            frames = (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return fit_frames(frames, request.width, request.height)

    def _oom_error(self, request: ShotRequest, exc: BaseException) -> GenerationError:
        return GenerationError(
            f"shot {request.shot_id!r}: out of memory at {request.width}x{request.height}, "
            f"{request.num_frames} frames, even with VAE tiling and offload",
            hint="use a smaller video size, fewer frames per shot, or a smaller model",
        )

    def close(self) -> None:
        if self.pipe is None:
            return
        self.pipe = None
        self.siblings.clear()
        self._levers.clear()
        self._loras.clear()
        self._free()
