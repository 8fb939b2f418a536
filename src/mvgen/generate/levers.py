"""GPU levers on a loaded pipeline: attention kernels, a step cache, torch.compile.

Each is set from the shot request before sampling and only changed when the request asks for
something else, so a render pays for a switch (or a compile) once, not per shot. Nothing here
changes which weights run: the cache key records the step cache (it changes pictures a little);
the attention kernels and compilation give the same pictures within floating-point rounding.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mvgen.generate.base import Notify, ShotRequest

log = logging.getLogger(__name__)

# mvgen's names -> diffusers' attention backend names
ATTENTION_BACKENDS = {"native": "native", "flash": "flash", "flash3": "_flash_3", "sage": "sage"}
# the package each kernel needs
_KERNEL_PACKAGES = {"flash": "flash_attn", "flash3": "flash_attn_interface", "sage": "sageattention"}


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def pick_attention(requested: str, device: str) -> str:
    """mvgen's attention name for a request: ``auto`` is FlashAttention 3 (Hopper), then 2, when
    installed and on CUDA, else PyTorch's SDPA (``native``: itself a flash/cuDNN kernel on CUDA)."""
    if requested != "auto":
        return requested
    if device == "cuda":
        for name in ("flash3", "flash"):
            if installed(_KERNEL_PACKAGES[name]):
                return name
    return "native"


@dataclass
class LeverState:
    """What is set on one pipeline's transformer now."""

    attention: str = "native"
    step_cache: tuple[Any, ...] | None = None  # (kind, threshold[, steps, ratios])
    compiled: bool | None = None  # None: not compiled; else whether in one graph (fullgraph)
    notes: set[str] = field(default_factory=set)


def apply_levers(
    pipe: Any,
    state: LeverState,
    request: ShotRequest,
    device: str,
    notify: Notify,
    *,
    magcache_ratios: list[float] | None = None,
) -> None:
    """Bring ``pipe``'s transformer to the request's levers (a no-op when already there), and clear
    the step cache's memory of any earlier sample (one that stopped part-way included).
    ``magcache_ratios``: the model's measured ratios, for ``step_cache="magcache"``."""
    transformer = getattr(pipe, "transformer", None)
    if transformer is None:
        return
    _attention(transformer, state, pick_attention(request.attention, device), notify)
    want: tuple[Any, ...] | None = None
    if request.step_cache == "fbc":
        want = ("fbc", request.step_cache_threshold)
    elif request.step_cache == "magcache":
        if magcache_ratios is None:
            raise ValueError("step_cache='magcache' needs the model's ratios")
        want = ("magcache", request.step_cache_threshold, request.steps, tuple(magcache_ratios))
    if want != state.step_cache:
        if state.step_cache is not None:
            transformer.disable_cache()
        if want is not None and want[0] == "fbc":
            from diffusers.hooks import FirstBlockCacheConfig

            transformer.enable_cache(FirstBlockCacheConfig(threshold=want[1]))
        elif want is not None:
            from mvgen.generate import magcache

            transformer.enable_cache(magcache.config(want[1], want[2], list(want[3])))
        state.step_cache = want
    if state.step_cache is not None and hasattr(transformer, "_reset_stateful_cache"):
        # A sample that stopped part-way (an out-of-memory retried, a failed shot under --keep-going)
        # leaves its residuals and step count behind; the next sample must not start from them.
        transformer._reset_stateful_cache()
    # A step cache's hooks wrap each block; torch.compile cannot trace them in one graph (a shot
    # compiled with fullgraph=True under them fails), so with one the blocks compile in pieces.
    fullgraph = state.step_cache is None
    if request.compile and request.step_cache == "magcache" and "compile+magcache" not in state.notes:
        state.notes.add("compile+magcache")
        notify(
            "compile with cache: magcache: diffusers runs MagCache's hooks, and the blocks inside "
            "them, outside torch.compile, so compiling gains nothing here (cache: fbc keeps part of it)"
        )
    if request.compile and (state.compiled is None or (state.compiled and not fullgraph)):
        if device != "cuda" and "compile" not in state.notes:
            state.notes.add("compile")
            notify(f"--compile on {device}: compiling anyway (the first shot of each length is slow)")
        # The transformer's blocks are the same module repeated: compiled once, reused by all.
        transformer.compile_repeated_blocks(fullgraph=fullgraph)
        state.compiled = fullgraph


def _attention(transformer: Any, state: LeverState, name: str, notify: Notify) -> None:
    if name == state.attention:
        return
    package = _KERNEL_PACKAGES.get(name)
    if package is not None and not installed(package):
        if name not in state.notes:
            state.notes.add(name)
            notify(f"attention {name!r} needs the {package} package, which is not installed: using PyTorch's")
        name = "native"
    try:
        transformer.set_attention_backend(ATTENTION_BACKENDS[name])
    except Exception as exc:  # a kernel that does not run on this GPU: PyTorch's always does
        if name not in state.notes:
            state.notes.add(name)
            notify(f"attention {name!r} unavailable ({type(exc).__name__}: {exc}); using PyTorch's")
        transformer.set_attention_backend("native")
        name = "native"
    log.info("attention: %s", name)
    state.attention = name


def onednn_conv3d(pipe: Any) -> int:
    """Route a pipeline's 3D convolutions through oneDNN on the CPU; returns how many. For a batch
    of one whose channels x frames x height is at most 20480, PyTorch picks its slow reference
    kernel (a heuristic made for 2D inputs), and a narrow video VAE hits that on every layer: an
    8-channel 3x3x3 convolution over 6x130x210 takes 42 ms there and 5.4 ms in oneDNN, the same
    result within 2e-6 (measured on the 2-core CPU; the tiny models' VAE decode is 75 % of a clip).
    Inputs it does not fit (not 5D float32 on the CPU, or under autograd) take PyTorch's own path."""
    import torch

    if not torch.backends.mkldnn.is_available():
        return 0
    count = 0
    for conv in _modules(pipe):
        if (
            isinstance(conv, torch.nn.Conv3d)
            and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str)
        ):
            conv._conv_forward = _OneDnnConv3d(conv)  # nn.Conv3d.forward calls it
            count += 1
    return count


def _modules(pipe: Any) -> Iterator[Any]:
    """Every module of every torch component of ``pipe``."""
    import torch

    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            yield from component.modules()


class _OneDnnConv3d:
    def __init__(self, conv: Any) -> None:
        self.conv = conv

    def __call__(self, x: Any, weight: Any, bias: Any) -> Any:
        import torch

        c = self.conv
        if (
            x.dim() == 5
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and weight.dtype == torch.float32
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        ):
            return torch.mkldnn_convolution(
                x.contiguous(), weight.contiguous(), bias, c.padding, c.stride, c.dilation, c.groups
            )
        return torch.nn.functional.conv3d(x, weight, bias, c.stride, c.padding, c.dilation, c.groups)


def cpu_channel_norms(pipe: Any) -> int:
    """Give the Wan VAE's RMS norms (``WanRMS_norm``: an L2 normalisation over the channels) a
    CPU path that sums the squares along the channels instead of calling ``F.normalize``; returns
    how many. PyTorch's CPU vector norm over a non-innermost dimension is slow: on the tiny VAE's
    activations (1x32x9x128x208) it takes 42 ms where the sum of squares takes 17 ms, and at the
    decoder's smaller stages 10 ms against 0.4 ms, the same result within 2e-7 (measured on the
    2-core CPU; it was 70 % of the tiny model's VAE decode). Inputs that are not float32 on the CPU
    take diffusers' own path."""
    count = 0
    for norm in _modules(pipe):
        if type(norm).__name__ == "WanRMS_norm" and "forward" not in vars(norm):
            norm.forward = _CpuChannelNorm(norm, norm.forward)  # nn.Module.__call__ calls it
            count += 1
    return count


class _CpuChannelNorm:
    def __init__(self, norm: Any, own: Any) -> None:
        import torch

        self.norm, self.own, self.float32 = norm, own, torch.float32

    def __call__(self, x: Any) -> Any:
        n = self.norm
        if x.device.type != "cpu" or x.dtype != self.float32:
            return self.own(x)
        dim = 1 if n.channel_first else -1
        # F.normalize(x, dim) is x / max(||x||, 1e-12)
        normalized = x / x.square().sum(dim, keepdim=True).sqrt().clamp_min(1e-12)
        return normalized * n.scale * n.gamma + n.bias
