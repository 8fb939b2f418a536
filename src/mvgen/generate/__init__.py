"""Generation backends behind one narrow protocol, chosen by name. torch/diffusers are imported
only inside the backends, never at package import."""

from __future__ import annotations

from mvgen.config.presets import ModelRef
from mvgen.errors import ConfigError
from mvgen.generate.base import Backend, Notify, ShotRequest, StepCallback

__all__ = ["Backend", "Notify", "ShotRequest", "StepCallback", "get_backend"]


def get_backend(
    name: str, model: ModelRef, *, device: str = "auto", offload: str = "auto", dtype: str | None = None
) -> Backend:
    if name == "local":
        from mvgen.generate.local import LocalBackend

        return LocalBackend(model, device=device, offload=offload, dtype=dtype)
    raise ConfigError(f"unknown backend {name!r}", hint="available: local")
