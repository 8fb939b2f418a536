#!/usr/bin/env python
"""Train `tiny-vace`: the built-in tiny Wan with VACE's context blocks, so that a reference picture's
colour shows in the shot whatever colour the prompt names, and the prompt's colour shows when there
is none. On this 2-core CPU in about 25 minutes; evaluated through the saved pipeline loaded back with
``from_pretrained``, as mvgen loads it.

    python scripts/train_tiny_vace.py                    # train, evaluate, ship (src/mvgen/models/tiny-vace)
    python scripts/train_tiny_vace.py --out /tmp/vace    # ... somewhere else
    python scripts/train_tiny_vace.py --eval-only        # the figures of the shipped weights

The transformer (``mvgen.families.vace.tiny_vace_transformer``) starts as the shipped tiny
text-to-video one (its blocks, embeddings and head copied), with a context block beside each layer
whose output projection starts at zero (so it starts as the text-to-video model exactly). The
tokenizer, text encoder and VAE are the tiny's, frozen. Training is flow matching as in
``train_tiny.py`` (half the noise levels shifted by 3, half uniform, a fifth at noise 1; 10 % empty
prompts), on the synthetic world's clips, with the conditions ``WanVACEPipeline`` builds:

- 70 % of the batches with a reference picture: a textured field of the clip's colour at a random
  size and aspect, fitted into the frame on a white canvas as the pipeline fits it, while the
  prompt names another colour (70 %), the same one (15 %) or none (15 %). The reference's latent
  frame is the first latent frame (the target there: the reference's own latent, as the pipeline
  samples it);
- the rest without one (the prompt's colour), so the model keeps what it did;
- with a reference, the same noisy clip is also predicted under the prompt naming yet another
  colour, both pulled to the target and to each other (``--agree``): classifier-free guidance
  multiplies whatever a colour word changes, so with a reference the word must change nothing.

Evaluation: every colour as the reference with a prompt naming the colour three hues on, and every
colour's prompt without a reference: the CIE76 delta E of the clip's mean colour to the reference
picture's (target <= 12, issue 28) or to a textured field of the named colour's, through the pipeline at the preset's
settings (208x128, 33 frames, 8 steps, guidance 2).
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
from mvgen.media.vision import COLOURS, mean_colour, synthetic_clip  # noqa: E402

SHIPPED = tt.ROOT / "src" / "mvgen" / "models" / "tiny-vace"
BUCKETS = [(33, 128, 208), (17, 128, 208), (9, 128, 208), (17, 96, 160), (9, 96, 160)]


def reference_picture(colour: str, rng: np.random.Generator) -> np.ndarray:
    """A cast picture in the synthetic world: a textured field of ``colour``, 64-256 px a side, any
    aspect (uint8)."""
    h, w = (int(v) for v in rng.integers(64, 257, size=2))
    return (synthetic_clip(colour, "still", 1, h, w, rng)[0] * 255 + 0.5).astype(np.uint8)


def pipeline(tokenizer, text_encoder, vae, transformer):
    from diffusers import WanVACEPipeline

    from mvgen.families.wan import tiny_scheduler

    return WanVACEPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                           scheduler=tiny_scheduler(), transformer=transformer)  # fmt: skip


def conditions(pipe, frames: int, h: int, w: int, picture: np.ndarray | None):
    """The context latents (1, 96, f', h', w') the pipeline builds for a clip with no video to edit
    and ``picture`` as its reference (None: no reference), made by the pipeline's own methods."""
    import torch
    from PIL import Image

    refs = [Image.fromarray(picture)] if picture is not None else None
    with torch.no_grad():
        video, mask, refs = pipe.preprocess_conditions(
            None, None, refs, 1, h, w, frames, torch.float32, "cpu"
        )
        latents = pipe.prepare_video_latents(video, mask, refs, None, "cpu")
        return torch.cat([latents, pipe.prepare_masks(mask, refs, None)], dim=1)


def dataset(pipe, per_bucket: int, rng: np.random.Generator, log):
    """Per bucket: the clips' normalised latents, labels, each clip's reference context (its
    picture's latent frame and mask) and the no-reference context, shared by the bucket."""
    import torch

    cfg = pipe.vae.config
    mean = torch.tensor(cfg.latents_mean).view(1, 16, 1, 1, 1)
    std = torch.tensor(cfg.latents_std).view(1, 16, 1, 1, 1)
    data, start = [], time.time()
    for frames, h, w in BUCKETS:
        labels = [tt.random_labels(rng) for _ in range(per_bucket)]
        clips = [tt.to_tensor(synthetic_clip(c, m, frames, h, w, rng)) for c, m in labels]
        latents = torch.cat(
            [tt.encode(pipe.vae, torch.stack(clips[k : k + 8])) for k in range(0, per_bucket, 8)]
        )
        plain = conditions(pipe, frames, h, w, None)
        refs = torch.cat([conditions(pipe, 1, h, w, reference_picture(c, rng))[:, :, :1] for c, _ in labels])
        data.append({"latents": (latents - mean) / std, "labels": labels, "plain": plain, "refs": refs})
    log(f"dataset: {per_bucket} clips x {len(BUCKETS)} sizes ({time.time() - start:.0f} s)")
    return data


def check_conditions(pipe, rng: np.random.Generator) -> None:
    """The reference context the dataset prepends (a one-frame condition's first latent frame, in
    front of the no-reference context) is what the pipeline builds for a clip with that reference."""
    import torch

    picture = reference_picture("green", rng)
    built = conditions(pipe, 9, 128, 208, picture)
    ours = torch.cat(
        [conditions(pipe, 1, 128, 208, picture)[:, :, :1], conditions(pipe, 9, 128, 208, None)], 2
    )
    assert built.shape == ours.shape and torch.allclose(built, ours, atol=1e-5), (
        "the reference context differs"
    )


def other_colour(colour: str, rng: np.random.Generator) -> str:
    return str(rng.choice([c for c in COLOURS if c != colour]))


def start_from_t2v(vace, t2v) -> None:
    """The VACE transformer as the text-to-video one plus context blocks that add nothing yet."""
    import torch

    missing, unexpected = vace.load_state_dict(t2v.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("vace_") for k in missing), (missing, unexpected)
    with torch.no_grad():
        for block in vace.vace_blocks:
            block.proj_out.weight.zero_()
            block.proj_out.bias.zero_()


def train(vace, tokenizer, text_encoder, data, steps: int, rng: np.random.Generator, log, *,
          lr: float = 1e-3, with_ref: float = 0.7, agree: float = 1.0, shift: float = 3.0,
          pure_noise: float = 0.2) -> float:  # fmt: skip
    """Flow matching with the VACE context (see the module's docstring). Returns the final loss."""
    import torch

    opt = tt.SiblingSteps(vace, steps, lr, "vace", log)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    for step in range(steps):
        bucket = data[int(rng.integers(len(data)))]
        _, _, f, h, w = bucket["latents"].shape
        referenced = rng.random() < with_ref
        batch = max(2, min(16, 3000 // ((f + referenced) * h * w // 4)))
        idx = rng.integers(len(bucket["latents"]), size=batch)
        x0 = bucket["latents"][idx]
        context = bucket["plain"].expand(batch, -1, -1, -1, -1)
        prompts, others = [], []  # others: the same prompts naming another colour (with a reference)
        for i in idx:
            colour, motion = bucket["labels"][int(i)]
            r = rng.random()
            if r < 0.1:
                prompts.append("")
                others.append("")
            elif referenced:  # the picture's colour wins over the prompt's
                said = other_colour(colour, rng) if r < 0.73 else colour if r < 0.87 else None
                state = rng.bit_generator.state
                prompts.append(tt.make_prompt(rng, said, motion))
                rng.bit_generator.state = state  # the same words around another colour
                others.append(tt.make_prompt(rng, other_colour(colour, rng), motion))
            else:
                prompts.append(tt.make_prompt(rng, None if r < 0.17 else colour, motion))
        if referenced:
            ref = bucket["refs"][idx]
            x0 = torch.cat([ref[:, :16], x0], dim=2)  # the pipeline samples the reference's frame too
            context = torch.cat([ref, context], dim=2)
        sigma, noise, xt = tt.noised(x0, gen, shift, pure_noise)
        with torch.no_grad():
            text = tt.embed(tokenizer, text_encoder, prompts)
        pred = vace(xt, sigma * 1000.0, text, control_hidden_states=context, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(pred, noise - x0)
        total = loss
        if referenced and agree:
            # With a reference, a colour word must change nothing: the same noisy clip under a prompt
            # naming another colour is predicted the same (classifier-free guidance multiplies any
            # difference the word makes, so a small pull towards the prompt's colour becomes a large one).
            with torch.no_grad():
                text2 = tt.embed(tokenizer, text_encoder, others)
            pred2 = vace(xt, sigma * 1000.0, text2, control_hidden_states=context, return_dict=False)[0]
            total = (
                total
                + torch.nn.functional.mse_loss(pred2, noise - x0)
                + agree * torch.nn.functional.mse_loss(pred, pred2)
            )
        opt.step(step, total, loss)
    return opt.done()


def evaluate(weights: Path, *, seeds: int = 2, log=print) -> dict:
    """Delta E of each clip's mean colour to its reference picture's (a prompt naming the colour
    three hues on) and, without a reference, to the named colour's; through ``from_pretrained``."""
    import torch
    from diffusers import WanVACEPipeline
    from PIL import Image

    from mvgen.families.vace import install_tiny_vace

    tmp = Path(tempfile.mkdtemp(prefix="tiny-vace-eval-"))
    try:
        install_tiny_vace(tmp / "m", weights)
        pipe = WanVACEPipeline.from_pretrained(tmp / "m" / "t2v", use_safetensors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(1234)  # pictures the training never drew
    cases: list[dict] = []
    for seed in range(seeds):
        for k, colour in enumerate(COLOURS):
            named = COLOURS[(k + 3) % len(COLOURS)]
            for referenced in (True, False):
                picture = reference_picture(colour, rng) if referenced else None
                kw = {"reference_images": [Image.fromarray(picture)]} if referenced else {}
                frames = pipe(prompt=f"a {named} square, still", height=128, width=208, num_frames=33,
                              num_inference_steps=8, guidance_scale=2.0, max_sequence_length=64,
                              generator=torch.Generator().manual_seed(seed), output_type="np", **kw).frames[0]  # fmt: skip
                clip = mean_colour(frames * 255.0)
                # without a reference: the named colour as the training clips show it (textured)
                target = mean_colour(picture if referenced else reference_picture(named, rng))
                error = float(delta_e(rgb_to_lab(clip), rgb_to_lab(target)))
                cases.append({"seed": seed, "reference": colour if referenced else None, "prompt": named,
                              "delta_e": round(error, 2), "clip_rgb": [round(float(v)) for v in clip]})  # fmt: skip
    out = {}
    for referenced in (True, False):
        errs = [c["delta_e"] for c in cases if (c["reference"] is not None) == referenced]
        out["with_reference" if referenced else "without_reference"] = {
            "delta_e_median": round(float(np.median(errs)), 2), "delta_e_mean": round(float(np.mean(errs)), 2),
            "delta_e_max": round(float(np.max(errs)), 2), "within_12": sum(e <= 12 for e in errs), "cases": len(errs),
        }  # fmt: skip
    log(json.dumps(out))
    return {"figures": out, "cases": cases}


def main() -> int:
    ap = tt.sibling_parser(__doc__, SHIPPED, steps=2000, lr=1e-3, report="docs/tiny_vace.json")
    ap.add_argument(
        "--with-ref", type=float, default=0.7, help="share of the batches with a reference picture"
    )
    ap.add_argument(
        "--agree",
        type=float,
        default=1.0,
        help="weight of the loss that makes a colour word change nothing when a reference is given (0: off)",
    )
    ap.add_argument("--seeds", type=int, default=2, help="evaluate over this many seeds")
    args = ap.parse_args()

    from mvgen.families.vace import tiny_vace_transformer

    timings: dict[str, float] = {}
    if not args.eval_only:
        timings = tt.train_sibling(args, tiny_vace_transformer(), start_from_t2v, pipeline, check_conditions,
                                   dataset, train, with_ref=args.with_ref, agree=args.agree)  # fmt: skip
    t1 = time.time()
    report = evaluate(args.out, seeds=args.seeds)
    timings["eval_s"] = round(time.time() - t1, 1)
    report["timings"] = timings
    report["weights_mb"] = round(tt.weight_bytes(args.out) / 1e6, 2)
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
