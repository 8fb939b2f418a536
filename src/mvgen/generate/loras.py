"""LoRAs on a loaded pipeline: each file loaded once under its own adapter name, and before every
shot that shot's set made active with its weights (``set_adapters``), or the adapters disabled for a
shot without any. The model itself is never reloaded. A set that every shot of a pipeline uses is
fused into the weights (no adapter arithmetic per step) and unfused when another set comes.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

from mvgen.errors import ConfigError

log = logging.getLogger(__name__)


def adapter_modules(module: Any, name: str) -> int:
    """How many layers of ``module`` carry adapter ``name`` (PEFT's LoRA layers)."""
    return sum(1 for m in module.modules() if name in (getattr(m, "lora_A", None) or {}))


class LoraSwitch:
    """The LoRAs loaded into one pipeline and the set active now (``use`` before each shot)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.loaded: set[str] = set()
        self.active: tuple[tuple[str, float], ...] = ()
        self.fused: tuple[tuple[str, float], ...] | None = None
        self.switch_s: list[float] = []  # seconds each change of set took (loading excluded)

    def use(self, pipe: Any, loras: tuple, *, fuse: bool = False) -> None:
        """Make ``loras`` (``LoraUse``s) the active set on ``pipe``; ``fuse``: merge it into the
        weights (when every shot of this pipeline uses the same set)."""
        want = tuple((u.name, float(u.weight)) for u in loras)
        if want == self.active and (self.fused == want) == fuse:
            return
        for u in loras:
            if u.name not in self.loaded:
                self._load(pipe, u)
        t0 = time.perf_counter()
        with warnings.catch_warnings():  # PEFT's notes on merging and unmerging: done on purpose here
            warnings.filterwarnings("ignore", category=UserWarning, module="peft")
            self._switch(pipe, want, fuse)
        self.active = want
        self.switch_s.append(time.perf_counter() - t0)

    def _switch(self, pipe: Any, want: tuple[tuple[str, float], ...], fuse: bool) -> None:
        if self.fused is not None:
            pipe.unfuse_lora(components=["transformer"])
            self.fused = None
        if want:
            pipe.enable_lora()
            pipe.set_adapters([n for n, _ in want], adapter_weights=[w for _, w in want])
            if fuse:
                pipe.fuse_lora(components=["transformer"], lora_scale=1.0, adapter_names=[n for n, _ in want])
                self.fused = want
        elif self.loaded:
            pipe.disable_lora()

    def _load(self, pipe: Any, u: Any) -> None:
        name = Path(u.path).name
        try:
            with warnings.catch_warnings():  # several adapters in one model is what mvgen does on purpose
                warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                pipe.load_lora_weights(u.path, adapter_name=u.name)
        except Exception as exc:  # noqa: BLE001 - whatever the loader trips on, the file is at fault
            log.debug("loading LoRA %s failed", u.path, exc_info=True)
            first = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
            raise ConfigError(f"LoRA {name}: does not load into {self.model}: {first}",
                              hint="a LoRA trained for this model family and size") from None  # fmt: skip
        if not adapter_modules(pipe.transformer, u.name):
            pipe.delete_adapters(u.name)
            raise ConfigError(
                f"LoRA {name}: matches no layer of {self.model}'s transformer, so it would change nothing",
                hint="a LoRA trained for this model family (its keys name other layers)",
            )
        self.loaded.add(u.name)
        log.info("LoRA %s loaded as %s", name, u.name)
