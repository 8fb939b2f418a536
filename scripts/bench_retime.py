"""Retiming quality: frames rebuilt by flow, blend and nearest against the true frames.

    python scripts/bench_retime.py [--size 320x192] [--tiny 4]

Synthetic scenes with known motion are rendered at 48 fps (a smooth random texture with shapes,
moved by a sub-pixel affine camera): slow, medium and fast pans, a zoom, a rotation, and an object
crossing a panning background (occlusion). Every third frame is kept (a 16 fps "generated" clip) and
the 24 fps output is rebuilt from it, as assembly does (``mvgen.media.retime.Retimer``): output
frame k lies 2k/3 of the way through the clip; the true frame is the 48 fps frame 2k. The same
from 8 fps clips (every sixth frame kept: 3 output frames per generated one).

Then the tiny model's own renders (``--tiny N`` prompts, each a 33-frame clip at 8 fps): every other
generated frame is dropped and rebuilt halfway between its neighbours.

Per mode: PSNR and SSIM of the rebuilt frames only (the kept ones are exact in every mode), and a
judder figure: the coefficient of variation of the motion per output frame (the mean DIS flow
magnitude between consecutive output frames; 0 is perfectly even motion, nearest's 0, 0, 3x pattern
is about 1.4).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import cv2  # noqa: E402

from mvgen.media.retime import MODES, Retimer  # noqa: E402


def texture(w: int, h: int, seed: int) -> np.ndarray:
    """A smooth random colour texture with a few hard-edged shapes (something for flow to hold)."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(
        (rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC
    )
    fine = cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    img = cv2.addWeighted(base, 0.7, fine, 0.3, 0)
    for _ in range(12):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), int(rng.integers(6, h // 6)), c, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(
                img, (x, y), (x + int(rng.integers(8, w // 6)), y + int(rng.integers(8, h // 6))), c, -1
            )
    return img


def camera(img: np.ndarray, w: int, h: int, dx: float, dy: float, zoom: float, angle: float) -> np.ndarray:
    """The w x h view of ``img`` (centred, then moved by dx, dy source pixels, zoomed, rotated)."""
    H, W = img.shape[:2]
    m = cv2.getRotationMatrix2D((W / 2 + dx, H / 2 + dy), angle, zoom)
    m[:, 2] += [w / 2 - (W / 2 + dx), h / 2 - (H / 2 + dy)]
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def scene(name: str, w: int, h: int, n: int) -> np.ndarray:
    """``n`` frames at 48 fps of a named motion."""
    big = texture(3 * w, 3 * h, seed=zlib.crc32(name.encode()) % 1000)
    frames = []
    for i in range(n):
        if name.startswith("pan"):
            speed = {"pan-slow": 0.5, "pan-medium": 1.5, "pan-fast": 4.0}[name]  # px per 48 fps frame
            frames.append(camera(big, w, h, speed * i, 0.3 * speed * i, 1.0, 0.0))
        elif name == "zoom":
            frames.append(camera(big, w, h, 0, 0, 1.0 + 0.006 * i, 0.0))
        elif name == "rotation":
            frames.append(camera(big, w, h, 0, 0, 1.0, 0.4 * i))
        else:  # occlusion: a patch of another texture crossing a background panning the other way
            f = camera(big, w, h, -1.0 * i, 0, 1.0, 0.0)
            obj = texture(w // 3, h // 2, seed=7)
            x = int(round(w * 0.1 + 3.0 * i))
            y = h // 4
            x1 = min(w, x + obj.shape[1])
            if x < w:
                f[y : y + obj.shape[0], x:x1] = obj[:, : x1 - x]
            frames.append(f)
    return np.stack(frames)


def rebuild(clip: np.ndarray, mode: str, positions: list[tuple[int, int, int]]) -> list[np.ndarray]:
    r = Retimer(lambda j: clip[j], len(clip), mode)
    return [r.at(*p) for p in positions]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004, Gaussian window sigma 1.5) on the luma."""
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def g(v):
        return cv2.GaussianBlur(v, (11, 11), 1.5)

    mx, my = g(x), g(y)
    sxx, syy, sxy = g(x * x) - mx * mx, g(y * y) - my * my, g(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def judder(frames: list[np.ndarray]) -> float:
    """Coefficient of variation of the motion per output frame (mean flow magnitude)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    mags = [
        float(np.linalg.norm(dis.calc(grey[k], grey[k + 1], None), axis=2).mean())
        for k in range(len(grey) - 1)
    ]
    mean = statistics.fmean(mags)
    return statistics.pstdev(mags) / mean if mean > 1e-6 else 0.0


def score(truth: list[np.ndarray], made: dict[str, list[np.ndarray]], rebuilt: list[int]) -> dict[str, tuple]:
    out = {}
    for mode, frames in made.items():
        p = statistics.fmean(psnr(frames[k], truth[k]) for k in rebuilt)
        s = statistics.fmean(ssim(frames[k], truth[k]) for k in rebuilt)
        out[mode] = (p, s, judder(frames))
    return out


def synthetic(w: int, h: int, step: int) -> dict[str, dict[str, tuple]]:
    """Every scene, the clip = every ``step``-th 48 fps frame, output = every 2nd (24 fps)."""
    results = {}
    n_out = 36
    for name in ("pan-slow", "pan-medium", "pan-fast", "zoom", "rotation", "occlusion"):
        frames = scene(name, w, h, 2 * n_out + step)
        clip = frames[::step]
        positions = [(*divmod(2 * k, step), step) for k in range(n_out)]
        truth = [frames[2 * k] for k in range(n_out)]
        made = {m: rebuild(clip, m, positions) for m in MODES}
        rebuilt = [k for k, (_, num, _) in enumerate(positions) if num]
        results[name] = score(truth, made, rebuilt)
    return results


def tiny_clips(count: int) -> dict[str, np.ndarray]:
    """``count`` clips from the built-in tiny model (33 frames at 8 fps, 208x128)."""
    import torch

    from mvgen.config.presets import resolve_model
    from mvgen.generate.local import LocalBackend

    backend = LocalBackend(resolve_model("tiny"), device="cpu")
    backend.load()
    prompts = ["a red field panning left", "a blue sky drifting right", "green hills moving up",
               "an orange sunset panning right", "a cyan sea drifting left", "a yellow city moving down"]  # fmt: skip
    clips = {}
    for i, prompt in enumerate(prompts[:count]):
        with torch.no_grad():
            clips[prompt] = backend.pipe(
                prompt=prompt, num_frames=33, width=208, height=128, num_inference_steps=8, guidance_scale=2.0,
                generator=torch.Generator().manual_seed(i), output_type="np",
            ).frames[0]  # fmt: skip
    return {p: (np.clip(c, 0, 1) * 255 + 0.5).astype(np.uint8) for p, c in clips.items()}


def print_table(title: str, results: dict[str, dict[str, tuple]]) -> None:
    print(f"\n{title}")
    print(f"{'':22s}" + "".join(f"{m + ' PSNR':>14s}{m + ' SSIM':>14s}" for m in MODES) + "".join(f"{'judder ' + m:>16s}" for m in MODES))  # fmt: skip
    for name, r in results.items():
        cells = "".join(f"{r[m][0]:14.2f}{r[m][1]:14.4f}" for m in MODES)
        cells += "".join(f"{r[m][2]:16.3f}" for m in MODES)
        best = all(r["flow"][0] > r[m][0] and r["flow"][1] > r[m][1] for m in MODES if m != "flow")
        print(f"{name:22s}{cells}  {'flow best' if best else 'FLOW NOT BEST'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="320x192")
    ap.add_argument("--tiny", type=int, default=4, help="tiny-model clips to test (0: none)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    print(f"retiming quality at {w}x{h}: rebuilt frames only; judder over every output frame")
    print_table("16 fps clips -> 24 fps (2 of 3 output frames rebuilt)", synthetic(w, h, 3))
    print_table("8 fps clips -> 24 fps (2 of 3 output frames rebuilt)", synthetic(w, h, 6))
    if args.tiny:
        results = {}
        for prompt, clip in tiny_clips(args.tiny).items():
            kept = clip[::2]
            positions = [(*divmod(k, 2), 2) for k in range(len(clip))]
            made = {m: rebuild(kept, m, positions) for m in MODES}
            results[prompt[:22]] = score(list(clip), made, list(range(1, len(clip), 2)))
        print_table("tiny renders: every other generated frame dropped and rebuilt", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
