"""The built-in ``tiny`` model: Wan 2.1 text-to-video and image-to-video pipelines at a few hundred
kB, built from configs in code with no download, saved with ``save_pretrained`` and then loaded back
through ``DiffusionPipeline.from_pretrained`` exactly like a real model.

The weights are random (seeded), so it renders texture, not pictures: it exists so that CI and new
users can run every stage of the real pipeline on any CPU in about a second per shot.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mvgen.files import cache_root

TINY_VERSION = 1
TEXT_DIM = 32


def tiny_root() -> Path:
    return cache_root() / "models" / f"tiny-v{TINY_VERSION}"


def _byte_tokenizer():
    """A byte-level tokenizer (every UTF-8 byte is a token) made with the ``tokenizers`` library,
    wrapped so that transformers' AutoTokenizer saves and reloads it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def _transformer(in_channels: int):
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,
    )


def build_tiny(dest: Path) -> None:
    """Build both pipelines into ``dest/t2v`` and ``dest/i2v`` (seeded: same weights every time)."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = _byte_tokenizer()
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=TEXT_DIM,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    ).eval()
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    ).eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    torch.manual_seed(0)
    t2v = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=_transformer(16),
    )
    torch.manual_seed(1)
    # The image-to-video sibling: 16 noise + 4 mask + 16 image-latent channels, no CLIP image
    # encoder (the Wan 2.2 layout), sharing the tokenizer, text encoder and VAE.
    i2v = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=_transformer(36),
        image_encoder=None,
        image_processor=None,
    )
    t2v.save_pretrained(dest / "t2v", safe_serialization=True)
    i2v.save_pretrained(dest / "i2v", safe_serialization=True)


def ensure_tiny() -> Path:
    """The folder of the tiny text-to-video pipeline, built on first use (atomically, under a lock
    so that two processes starting together build it once)."""
    from filelock import FileLock

    root = tiny_root()
    if (root / "t2v" / "model_index.json").is_file() and (root / "i2v" / "model_index.json").is_file():
        return root / "t2v"
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not (root / "t2v" / "model_index.json").is_file():
            from mvgen.generate.local import quiet_libraries

            quiet_libraries()
            tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
            try:
                build_tiny(tmp)
                if root.exists():
                    shutil.rmtree(root)
                tmp.rename(root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return root / "t2v"
