"""Retiming: the output frames that fall between two generated frames.

A clip is generated at its model's native rate (Wan 16 fps, tiny 8) and shown at the video's (24):
most output frames fall between two generated frames. ``nearest`` shows the frame before (today's
judder: a 16 fps clip repeats every other frame); ``blend`` crossfades the two neighbours;
``flow`` (the default) synthesises the frame from dense optical flow between them:

* OpenCV's DIS flow, both ways, on a grey copy at most ``FLOW_WIDTH`` pixels wide (the flow is
  smooth; the pictures are warped at full size);
* the flow from the output time to each side by the quadratic approximation from the two flows
  (Jiang et al., "Super SloMo", CVPR 2018, eq. 4), both frames warped there and blended by time,
  weighted by where each frame sees the point: forward-backward consistency (Sundaram et al.,
  ECCV 2010) marks what one frame occludes, and there the other frame is used;
* a pair whose flow does not explain the change (warping one frame onto the other is not clearly
  better than leaving it: a cut or a flash inside the clip, a change too fast for the flow) falls
  back to the blend, as do pixels that neither frame sees.

Work happens at the clip's own size, before scaling to the output; each pair's flow is computed
once, when the first output frame between them is asked for, and dropped when the clip moves on:
memory is a few frames per open clip, flat in the video's length.
"""

from __future__ import annotations

import numpy as np

MODES = ("flow", "blend", "nearest")
FLOW_WIDTH = 256  # flow is computed on a grey copy at most this wide (scripts/bench_retime.py)
DIS_PRESET = "fast"  # OpenCV DIS preset: ultrafast | fast | medium (scripts/bench_retime.py)
# A pair's flow is used when warping explains the change: the warped frame's mean absolute error
# is at most this fraction of the unwarped one's (below MIN_CHANGE of change, both are fine)...
EXPLAINED = 0.8
MIN_CHANGE = 1.0  # grey levels of 255
# ...and at least this share of pixels is consistent both ways.
MIN_CONSISTENT = 0.4


def _cv2():
    import cv2

    return cv2


class _PairFlow:
    """Flows between two frames (grey, at flow size), their consistency weights and whether the
    flow is trusted at all."""

    __slots__ = ("forward", "backward", "vis0", "vis1", "usable")

    def __init__(self, a: np.ndarray, b: np.ndarray, dis) -> None:
        cv2 = _cv2()
        h, w = a.shape[:2]
        scale = min(1.0, FLOW_WIDTH / w)
        fw, fh = max(8, round(w * scale)), max(8, round(h * scale))
        g0 = cv2.resize(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), (fw, fh), interpolation=cv2.INTER_AREA)
        g1 = cv2.resize(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), (fw, fh), interpolation=cv2.INTER_AREA)
        self.forward = dis.calc(g0, g1, None)  # frame 0 -> 1, in flow pixels
        self.backward = dis.calc(g1, g0, None)
        grid = _grid(fw, fh)
        self.vis0 = _consistency(self.forward, self.backward, grid)
        self.vis1 = _consistency(self.backward, self.forward, grid)
        warped = cv2.remap(
            g1, cv2.add(grid, self.forward), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        still = float(np.mean(cv2.absdiff(g0, g1)))
        moved = float(np.mean(cv2.absdiff(g0, warped)))
        self.usable = still < MIN_CHANGE or (
            moved <= EXPLAINED * still and float(self.vis0.mean()) >= MIN_CONSISTENT
        )


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def _grid(w: int, h: int) -> np.ndarray:
    """Pixel coordinates (x, y) as a float32 (h, w, 2) map: the identity for cv2.remap."""
    grid = _GRIDS.get((w, h))
    if grid is None:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        grid = _GRIDS[(w, h)] = np.dstack([xs, ys])
        if len(_GRIDS) > 8:
            _GRIDS.pop(next(iter(_GRIDS)))
    return grid


def _consistency(flow: np.ndarray, back: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """1 where following ``flow`` and then ``back`` returns to the start (the point is seen in
    both frames), 0 where it does not (occluded in the other frame); a soft edge between."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    there = cv2.add(grid, flow)
    back_there = cv2.remap(back, there, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    loop = _length(cv2.add(flow, back_there))
    out, ret = _length(flow), _length(back_there)
    seen = loop * loop <= 0.01 * (out * out + ret * ret) + 0.5
    # a point that moves out of the picture is not seen in the other frame either
    seen &= (there[..., 0] >= 0) & (there[..., 0] <= w - 1) & (there[..., 1] >= 0) & (there[..., 1] <= h - 1)
    return cv2.blur(seen.astype(np.float32), (3, 3))


def _length(flow: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    return cv2.magnitude(flow[..., 0], flow[..., 1])


def blend(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The crossfade ``(1 - t) a + t b``."""
    cv2 = _cv2()
    return cv2.addWeighted(a, 1.0 - t, b, t, 0.0)


def interpolate(a: np.ndarray, b: np.ndarray, t: float, pair: _PairFlow) -> np.ndarray:
    """The frame at time ``t`` (0 < t < 1) between ``a`` and ``b`` (uint8 RGB, same size)."""
    if not pair.usable:
        return blend(a, b, t)
    cv2 = _cv2()
    h, w = a.shape[:2]
    fh, fw = pair.forward.shape[:2]
    # Flow from the output time back to each frame (flow pixels), from the two flows.
    to0 = cv2.addWeighted(pair.forward, -(1.0 - t) * t, pair.backward, t * t, 0.0)
    to1 = cv2.addWeighted(pair.forward, (1.0 - t) * (1.0 - t), pair.backward, -t * (1.0 - t), 0.0)
    low = _grid(fw, fh)
    # Where a frame is looked at outside its picture (the edge a pan brings in), it sees nothing.
    seen0 = cv2.remap(pair.vis0, cv2.add(low, to0), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    seen1 = cv2.remap(pair.vis1, cv2.add(low, to1), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # Weighted by time and by which frame sees the point; where neither does, by time alone.
    w0 = (1.0 - t) * (seen0 + 0.02)
    w1 = t * (seen1 + 0.02)
    if (fw, fh) != (w, h):
        scale = (w / fw, h / fh, 0.0, 0.0)
        to0 = cv2.multiply(cv2.resize(to0, (w, h), interpolation=cv2.INTER_LINEAR), scale)
        to1 = cv2.multiply(cv2.resize(to1, (w, h), interpolation=cv2.INTER_LINEAR), scale)
        w0 = cv2.resize(w0, (w, h), interpolation=cv2.INTER_LINEAR)
        w1 = cv2.resize(w1, (w, h), interpolation=cv2.INTER_LINEAR)
    grid = _grid(w, h)
    from0 = cv2.remap(a, cv2.add(grid, to0), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    from1 = cv2.remap(b, cv2.add(grid, to1), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.blendLinear(from0, from1, w0, w1)


def to_size(img: np.ndarray, width: int, height: int, *, area: bool = False) -> np.ndarray:
    """``img`` scaled to ``width`` x ``height`` (bicubic; ``area``: pixel-area averaging, for
    shrinking); itself when it is that size."""
    if img.shape[1] == width and img.shape[0] == height:
        return img
    cv2 = _cv2()
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if area else cv2.INTER_CUBIC)


class Retimer:
    """One clip's frames at fractional positions, for one retime mode. ``get(j)`` is the clip's
    frame j (moving forward, as ``ClipReader.get``); ``at(j, num, den)`` the frame ``num / den`` of
    the way from j to j + 1, made by the mode. Holds the last two frames and their pair's flow."""

    def __init__(self, get, n_frames: int, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"retime mode {mode!r}: expected one of {', '.join(MODES)}")
        self._get, self.n_frames, self.mode = get, n_frames, mode
        self._frames: dict[int, np.ndarray] = {}
        self._pair: tuple[int, _PairFlow] | None = None
        self._dis = None

    def get(self, j: int) -> np.ndarray:
        j = min(max(j, 0), self.n_frames - 1)
        frame = self._frames.get(j)
        if frame is None:
            frame = self._frames[j] = self._get(j)
            for old in [i for i in self._frames if i < j - 1]:
                del self._frames[old]
        return frame

    def at(self, j: int, num: int, den: int) -> np.ndarray:
        if num == 0 or j >= self.n_frames - 1 or self.mode == "nearest":
            return self.get(j)
        a, b = self.get(j), self.get(j + 1)
        t = num / den
        if self.mode == "blend":
            return blend(a, b, t)
        if self._pair is None or self._pair[0] != j:
            if self._dis is None:
                cv2 = _cv2()
                preset = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                          "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[DIS_PRESET]  # fmt: skip
                self._dis = cv2.DISOpticalFlow_create(preset)
            self._pair = (j, _PairFlow(a, b, self._dis))
        return interpolate(a, b, t, self._pair[1])
