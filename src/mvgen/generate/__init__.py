"""Generation backends behind one narrow protocol, chosen by name. torch/diffusers are imported
only inside the backends, never at package import."""

from mvgen.generate.base import Backend, Notify, ShotRequest, StepCallback, get_backend

__all__ = ["Backend", "Notify", "ShotRequest", "StepCallback", "get_backend"]
