"""The backend protocol and registry. A backend loads a model once and turns ``ShotRequest``s into
frames; the pipeline handles caching, ordering and progress around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np


StepCallback = Callable[[int, int], None]  # (step done, total steps)
Notify = Callable[[str], None]  # a one-line notice for the user (a retry, a fallback)


@dataclass(frozen=True)
class ShotRequest:
    shot_id: str
    prompt: str
    negative: str
    seed: int
    width: int
    height: int
    num_frames: int
    steps: int
    guidance: float
    max_sequence_length: int
    fps: float = 0.0  # the model's native frame rate (LTX conditions on it)
    # Frames one denoising window makes, for a model that makes a longer clip in one run by sliding
    # windows (SkyReels-V2 diffusion forcing); 0: one call makes the whole clip at once.
    window_frames: int = 0
    # The conditioning frame of a chained shot (uint8 h x w x 3, the previous shot's last frame):
    # the backend generates it with the model's image-to-video sibling.
    image: np.ndarray | None = field(default=None, compare=False)
    # GPU levers (RenderPlan): a step cache ("fbc") and its threshold, torch.compile, attention kernels.
    step_cache: str = "none"
    step_cache_threshold: float = 0.05
    compile: bool = False
    attention: str = "auto"
    # LoRAs (timeline.LoraUse: adapter name, file, weight) active for this shot; ``fuse_loras``: every
    # shot of this pipeline uses this same set, so it is merged into the weights.
    loras: tuple = ()
    fuse_loras: bool = False
    # Reference pictures (uint8 h x w x 3, a cast's) for a family that takes them (VACE: each becomes
    # a latent frame in front of the clip, dropped again before the decode).
    references: tuple = field(default=(), compare=False)
    # The frame it must end on (uint8 h x w x 3): the backend draws it with the first-and-last-frame
    # model, from ``image`` (or, without one, from the first frame of its own text-to-video render).
    last_image: np.ndarray | None = field(default=None, compare=False)


class Backend(Protocol):
    name: str

    @property
    def loaded(self) -> bool:
        """Whether ``load`` has run (and ``close`` has not)."""

    def load(self) -> None:
        """Load the model (once). Raises SetupError when weights or the device are missing."""

    def identity(self) -> dict[str, str]:
        """``{"id": ..., "revision": ...}``: what goes into cache keys and the manifest."""

    def i2v_revision(self) -> str:
        """The revision of the image-to-video sibling (in chained shots' cache keys)."""

    def flf_revision(self) -> str:
        """The revision of the first-and-last-frame model (in the keys of shots with an end frame)."""

    def generate(
        self,
        request: ShotRequest,
        on_step: StepCallback,
        *,
        latents_path: Path | None = None,
        notify: Notify = ...,
    ) -> np.ndarray:
        """Frames as uint8 ``(num_frames, height, width, 3)``. Denoised latents are saved to (and
        resumed from) ``latents_path`` when given."""

    def close(self) -> None:
        """Free the model and device memory."""
