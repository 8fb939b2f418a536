"""Train a LoRA for the built-in `tiny` model that does something you can see, on a CPU in minutes.

    python scripts/train_tiny_lora.py --out sunset.safetensors [--look sunset|night] [--steps 150] [--rank 4]

The "sunset" look pulls every clip towards orange, "night" towards deep blue: the training clips are
the synthetic world's clips (scripts/train_tiny.py) blended towards that colour, with their usual
prompts, so the LoRA learns a look, not a word. The tiny model's weights stay frozen; PEFT adds rank-``r`` adapters to the
text-to-video transformer's attention and feed-forward layers, trained with the flow-matching loss of
train_tiny.py. The file is in diffusers' LoRA layout (``transformer.….lora_A.weight``); a shot list
uses it with ``loras: [{path: sunset.safetensors, weight: 1.0}]``. The image-to-video sibling has the
same shapes, so it applies to chained shots too. The tests use the two this script made with its
defaults (``tests/data/loras/``: ``--look sunset`` and ``--look night``, seed 0).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_tiny as tt  # noqa: E402

LOOKS = {"sunset": np.array([255.0, 120.0, 0.0]), "night": np.array([10.0, 20.0, 160.0])}
TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2"]
BUCKETS = [(9, 128, 208), (17, 96, 160)]  # the sizes the tests render at; small, so minutes on a CPU


def with_look(clip: np.ndarray, look: str, amount: float = 0.6) -> np.ndarray:
    """The look: every pixel blended ``amount`` of the way to its colour."""
    return np.clip(clip * (1 - amount) + LOOKS[look] * amount, 0, 255).astype(np.uint8)


def dataset(vae, per_bucket: int, rng: np.random.Generator, look: str):
    """Latents of synthetic clips with the look applied, labelled with their own colour and motion
    (so a prompt's colour word still says what the clip was before the look)."""
    import torch

    from mvgen.media.vision import synthetic_clip

    data = []
    for frames, h, w in BUCKETS:
        labels = [tt.random_labels(rng) for _ in range(per_bucket)]
        videos = torch.stack(
            [tt.to_tensor(with_look(synthetic_clip(c, m, frames, h, w, rng), look)) for c, m in labels]
        )
        data.append({"latents": torch.cat([tt.encode(vae, videos[k : k + 8]) for k in range(0, per_bucket, 8)]),
                     "i2v": False, "labels": labels})  # fmt: skip
    return data


def train(
    out: Path,
    *,
    look: str = "sunset",
    steps: int = 150,
    rank: int = 4,
    seed: int = 0,
    clips: int = 48,
    log=print,
) -> Path:
    """Train a look's LoRA on the shipped tiny weights (``clips`` training clips per size) and write it
    to ``out``."""
    import torch
    from diffusers import WanPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from mvgen.families import FAMILIES

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t0 = time.time()
    tokenizer, text_encoder, vae, t2v, _ = tt.load_weights(FAMILIES["wan"].tiny_weights)
    for module in (text_encoder, vae, t2v):
        module.requires_grad_(False)
    data = dataset(vae, clips, rng, look)
    tt.normalise(data, list(vae.config.latents_mean), list(vae.config.latents_std))
    t2v.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=TARGETS, init_lora_weights=True))
    tt.train_transformer(t2v, tokenizer, text_encoder, data, steps, rng, log, name=f"{look} LoRA",
                         train_text=False, lr=3e-3)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    WanPipeline.save_lora_weights(out.parent, transformer_lora_layers=get_peft_model_state_dict(t2v),
                                  weight_name=out.name)  # fmt: skip
    log(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) in {time.time() - t0:.0f} s")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("sunset.safetensors"))
    ap.add_argument("--look", choices=sorted(LOOKS), default="sunset")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    train(args.out, look=args.look, steps=args.steps, rank=args.rank, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
