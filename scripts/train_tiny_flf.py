#!/usr/bin/env python
"""Train the tiny's first-and-last-frame sibling (issue 29): the Wan 2.1 FLF2V / Wan 2.2 A14B
image-to-video form, ``WanImageToVideoPipeline(image=..., last_image=...)`` without
``expand_timesteps``: the transformer reads 36 channels a latent pixel, the noise (16), a mask of the
given frames (4: the VAE's four frames a latent frame) and the latents of a video that is the first
image, then nothing, then the last image (16). It learns to draw a clip that starts on one frame and
ends on another; without a last image, one that starts on the first (as Wan 2.1's I2V does).

    python scripts/train_tiny_flf.py                  # train, evaluate, ship (src/mvgen/models/tiny/flf)
    python scripts/train_tiny_flf.py --out /tmp/flf   # ... somewhere else
    python scripts/train_tiny_flf.py --eval-only      # the figures of the shipped weights
    python scripts/train_tiny_flf.py --out /tmp/v3 && \
        python scripts/train_tiny_flf.py --init /tmp/v3 --seed 1 --steps 4000 --lr 1e-3
                                                      # the shipped weights (v4): two runs

The transformer starts as the shipped tiny text-to-video one (its patch embedding's first 16 input
channels copied, the other 20 at zero: it starts as exactly that model and learns to read the
condition). The tokenizer, text encoder and VAE are the tiny's, frozen. Flow matching as in
``train_tiny.py`` (half the noise levels shifted by 3, half uniform, a fifth at noise 1; 10 % empty
prompts) on bridges in the synthetic world (``bridge_clip``): scene A, its camera moving as the
prompt says, dissolving into scene B over the clip (smoothstep), ending exactly on B's frame; the
condition is built by the pipeline's own ``prepare_latents``. A quarter of the samples give the
first frame only (the clip is then A's scene carrying on, its colour easing into the prompt's).

Evaluation (issue 29's line): every ordered pair of the eight colours (56), a bridge from a frame of
colour X to a frame of colour Y: the CIE76 delta E of the first output frame's mean colour to the
first image's and of the last to the last image's (target <= 6), and whether the mean colour moves
from one to the other without going back.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_tiny as tt  # noqa: E402
from mvgen.media.colour import delta_e, rgb_to_lab  # noqa: E402
from mvgen.media.vision import (  # noqa: E402
    COLOURS,
    TILE,
    Camera,
    camera_path,
    field_colour,
    mean_colour,
    render,
    synthetic_continuation,
    texture,
)

SHIPPED = tt.ROOT / "src" / "mvgen" / "models" / "tiny" / "flf"  # beside the tiny's t2v/ and i2v/
BUCKETS = [(33, 128, 208), (17, 128, 208), (9, 128, 208), (17, 96, 160), (9, 96, 160)]
PAN_MOTIONS = ("left", "right", "up", "down", "still")


def smoothstep(frames: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, frames)
    return t * t * (3 - 2 * t)


def bridge_clip(
    a: str, b: str, motion: str, frames: int, h: int, w: int, rng: np.random.Generator
) -> np.ndarray:
    """Scene A (colour ``a``) dissolving into scene B (colour ``b``) over ``frames``, both cameras
    moving by ``motion``: the first frame is A's, the last B's, the mean colour moves from one to the
    other without going back."""
    scenes = []
    for colour in (a, b):
        path = camera_path(motion, frames, Camera(rng.uniform(0, TILE), rng.uniform(0, TILE)))
        scenes.append(render(texture(rng), np.tile(field_colour(colour, rng), (frames, 1)), path, h, w))
    weight = smoothstep(frames)[:, None, None, None]
    return (1 - weight) * scenes[0] + weight * scenes[1]


def flf_transformer():
    """The tiny transformer's shape reading 36 channels (noise 16, mask 4, condition 16)."""
    from diffusers import WanTransformer3DModel

    from mvgen.families.wan import tiny_transformer

    config = dict(tiny_transformer().config)
    config.update(in_channels=36)
    return WanTransformer3DModel(**{k: v for k, v in config.items() if not k.startswith("_")})


def start_from_t2v(flf, t2v) -> None:
    import torch

    state = t2v.state_dict()
    w = state.pop("patch_embedding.weight")
    missing, unexpected = flf.load_state_dict(state, strict=False)
    assert missing == ["patch_embedding.weight"] and not unexpected, (missing, unexpected)
    with torch.no_grad():
        flf.patch_embedding.weight.zero_()
        flf.patch_embedding.weight[:, :16] = w


def start_from(flf, weights: Path) -> None:
    """``--init``: continue from a saved sibling's transformer."""
    from safetensors.torch import load_file

    flf.load_state_dict(load_file(str(weights / "transformer" / "diffusion_pytorch_model.safetensors")))


def pipeline(tokenizer, text_encoder, vae, transformer):
    from diffusers import WanImageToVideoPipeline

    from mvgen.families.wan import tiny_scheduler

    return WanImageToVideoPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=tiny_scheduler(),
                                   transformer=transformer, image_encoder=None, image_processor=None)  # fmt: skip


def condition(pipe, first: np.ndarray, last: np.ndarray | None, frames: int):
    """The pipeline's condition (1, 20, f', h', w') for a clip from ``first`` (to ``last``), floats in
    [0, 1] (h, w, 3), by its own ``prepare_latents``: what ``conditions`` must match."""
    import torch

    h, w = first.shape[:2]
    with torch.no_grad():
        _, cond = pipe.prepare_latents(_tensor(first), 1, 16, h, w, frames, torch.float32, "cpu", None, None,
                                       _tensor(last) if last is not None else None)  # fmt: skip
    return cond


def _tensor(image):
    import torch

    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() * 2 - 1


def conditions(pipe, clips: list[np.ndarray], with_last: list[bool]):
    """``condition`` for a batch of clips at once (one VAE encode): the mask and the normalised
    latents of [first frame, nothing, last frame (or nothing)], as ``prepare_latents`` builds them."""
    import torch

    f, h, w = clips[0].shape[:3]
    video = torch.zeros(len(clips), 3, f, h, w)
    mask = torch.ones(len(clips), 1, f, h // 8, w // 8)
    for k, (clip, last) in enumerate(zip(clips, with_last, strict=True)):
        video[k, :, 0] = _tensor(clip[0])[0]
        mask[k, :, 1 : f - 1 if last else f] = 0
        if last:
            video[k, :, -1] = _tensor(clip[-1])[0]
    cfg = pipe.vae.config
    with torch.no_grad():
        latents = tt.encode(pipe.vae, video)
    latents = (latents - torch.tensor(cfg.latents_mean).view(1, 16, 1, 1, 1)) / torch.tensor(
        cfg.latents_std
    ).view(1, 16, 1, 1, 1)
    mask = torch.cat([mask[:, :, :1].repeat_interleave(4, dim=2), mask[:, :, 1:]], dim=2)
    mask = mask.view(len(clips), -1, 4, h // 8, w // 8).transpose(1, 2)
    return torch.cat([mask, latents], dim=1)


def dataset(pipe, per_bucket: int, rng: np.random.Generator, log):
    import torch

    cfg = pipe.vae.config
    mean = torch.tensor(cfg.latents_mean).view(1, 16, 1, 1, 1)
    std = torch.tensor(cfg.latents_std).view(1, 16, 1, 1, 1)
    data, start = [], time.time()
    for frames, h, w in BUCKETS:
        clips, labels, lasts = [], [], []
        for _ in range(per_bucket):
            a, b = rng.choice(COLOURS, size=2, replace=False)
            motion = str(rng.choice(PAN_MOTIONS))
            last = rng.random() >= 0.25  # else the first frame only: the scene carries on into b
            if last:
                clip = bridge_clip(str(a), str(b), motion, frames, h, w, rng)
            else:
                lengths = (int(rng.integers(1, frames + 1)), frames)
                _, clip = synthetic_continuation(tt.random_labels(rng), (str(b), motion), lengths, h, w, rng)
            clips.append(clip)
            lasts.append(last)
            labels.append((str(b), motion))
        videos = torch.stack([tt.to_tensor(c) for c in clips])
        latents = torch.cat([tt.encode(pipe.vae, videos[k : k + 8]) for k in range(0, per_bucket, 8)])
        conds = torch.cat(
            [conditions(pipe, clips[k : k + 8], lasts[k : k + 8]) for k in range(0, per_bucket, 8)]
        )
        data.append({"latents": (latents - mean) / std, "labels": labels, "cond": conds})
    log(f"dataset: {per_bucket} clips x {len(BUCKETS)} sizes ({time.time() - start:.0f} s)")
    return data


def check_conditions(pipe, rng: np.random.Generator) -> None:
    """The batched conditions are what the pipeline builds, with and without a last frame."""
    import torch

    clip = bridge_clip("red", "blue", "left", 17, 96, 160, rng)
    ours = conditions(pipe, [clip, clip], [True, False])
    for k, last in enumerate((clip[-1], None)):
        theirs = condition(pipe, clip[0], last, 17)
        assert torch.allclose(ours[k : k + 1], theirs, atol=1e-4), float(
            (ours[k : k + 1] - theirs).abs().max()
        )


def train(flf, tokenizer, text_encoder, data, steps: int, rng: np.random.Generator, log, *,
          lr: float = 1e-3, shift: float = 3.0, pure_noise: float = 0.2, end_weight: float = 1.0) -> float:  # fmt: skip
    import torch

    opt = tt.SiblingSteps(flf, steps, lr, "flf", log)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    for step in range(steps):
        bucket = data[int(rng.integers(len(data)))]
        _, _, f, h, w = bucket["latents"].shape
        batch = max(2, min(16, 3000 // (f * h * w // 4)))
        idx = rng.integers(len(bucket["latents"]), size=batch)
        x0, cond = bucket["latents"][idx], bucket["cond"][idx]
        prompts = []
        for i in idx:
            colour, motion = bucket["labels"][int(i)]
            r = rng.random()
            prompts.append("" if r < 0.1 else tt.make_prompt(rng, None if r < 0.2 else colour, motion))
        sigma, noise, xt = tt.noised(x0, gen, shift, pure_noise)
        with torch.no_grad():
            text = tt.embed(tokenizer, text_encoder, prompts)
        pred = flf(torch.cat([xt, cond], dim=1), sigma * 1000.0, text, return_dict=False)[0]
        err = (pred - noise + x0) ** 2
        weight = torch.ones(f)
        weight[0] = weight[-1] = end_weight
        opt.step(step, (err.mean(dim=(0, 1, 3, 4)) * weight).sum() / weight.sum())
    return opt.done()


def load(weights: Path):
    """The saved pipeline, loaded back with ``from_pretrained`` (the tiny's shared parts beside it)."""
    from diffusers import WanImageToVideoPipeline

    from mvgen.families.wan import TINY_SHARED, TINY_WEIGHTS

    tmp = Path(tempfile.mkdtemp(prefix="tiny-flf-eval-"))
    try:
        shutil.copytree(weights, tmp / "p")
        for part in TINY_SHARED:
            shutil.copytree(TINY_WEIGHTS / "t2v" / part, tmp / "p" / part)
        pipe = WanImageToVideoPipeline.from_pretrained(tmp / "p", use_safetensors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def evaluate(weights: Path, *, pairs: int = 56, log=print) -> dict:
    import torch
    from PIL import Image

    pipe = load(weights)
    rng = np.random.default_rng(4321)
    cases = []
    for a, b in [(a, b) for a in COLOURS for b in COLOURS if a != b][:pairs]:
        ends = [(render(texture(rng), field_colour(c, rng)[None], [Camera(rng.uniform(0, TILE), rng.uniform(0, TILE))],
                        128, 208)[0] * 255 + 0.5).astype(np.uint8) for c in (a, b)]  # fmt: skip
        with torch.no_grad():
            video = pipe(image=Image.fromarray(ends[0]), last_image=Image.fromarray(ends[1]),
                         prompt="a camera flying forward", height=128, width=208, num_frames=33,
                         num_inference_steps=8, guidance_scale=2.0, max_sequence_length=64,
                         generator=torch.Generator().manual_seed(len(cases)), output_type="np").frames[0]  # fmt: skip
        frames = (np.clip(video, 0, 1) * 255 + 0.5).astype(np.uint8)
        labs = [rgb_to_lab(mean_colour(f)) for f in frames]
        first = float(delta_e(labs[0], rgb_to_lab(mean_colour(ends[0]))))
        last = float(delta_e(labs[-1], rgb_to_lab(mean_colour(ends[1]))))
        # the distance to the end colour never grows by more than 2 delta E from one frame to the next
        to_end = [float(delta_e(lab, rgb_to_lab(mean_colour(ends[1])))) for lab in labs]
        steady = all(later <= earlier + 2.0 for earlier, later in zip(to_end, to_end[1:], strict=False))
        cases.append({"from": a, "to": b, "delta_e_first": round(first, 2), "delta_e_last": round(last, 2),
                      "no_going_back": steady})  # fmt: skip
    firsts = [c["delta_e_first"] for c in cases]
    lasts = [c["delta_e_last"] for c in cases]
    figures = {
        "first_median": float(np.median(firsts)), "first_max": float(max(firsts)),
        "last_median": float(np.median(lasts)), "last_max": float(max(lasts)),
        "both_within_6": sum(f <= 6 and la <= 6 for f, la in zip(firsts, lasts, strict=True)),
        "no_going_back": sum(c["no_going_back"] for c in cases), "pairs": len(cases),
    }  # fmt: skip
    log(json.dumps(figures))
    return {"figures": figures, "cases": cases}


def main() -> int:
    ap = tt.sibling_parser(__doc__, SHIPPED, steps=6000, lr=2e-3, report="docs/tiny_flf.json")
    ap.add_argument(
        "--end-weight", type=float, default=4.0, help="loss weight of the first and last latent frames"
    )
    ap.add_argument("--pairs", type=int, default=56, help="evaluate on the first N colour pairs (56: all)")
    ap.add_argument(
        "--init", type=Path, default=None, help="start from these weights (a saved sibling) instead"
    )
    args = ap.parse_args()

    timings: dict[str, float] = {}
    if not args.eval_only:
        start = start_from_t2v if args.init is None else (lambda flf, t2v: start_from(flf, args.init))
        timings = tt.train_sibling(args, flf_transformer(), start, pipeline, check_conditions, dataset,
                                   train, end_weight=args.end_weight)  # fmt: skip
    t1 = time.time()
    report = evaluate(args.out, pairs=args.pairs)
    timings["eval_s"] = round(time.time() - t1, 1)
    report["timings"] = timings
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
