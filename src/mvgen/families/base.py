"""What mvgen knows about a family of video diffusion models: the rules a shot list must meet
(frame counts, size multiple), good defaults, which diffusers pipeline classes belong to it, and the
few steps the backend runs itself (turning sampled latents into frames).

Importing a family module is cheap: torch, diffusers and transformers are imported inside the
functions that need them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TINY_TEXT_DIM = 32


@dataclass(frozen=True)
class Family:
    name: str  # the `family:` of a preset
    label: str  # how errors name it: "Wan", "LTX-Video"
    t2v_pipelines: tuple[str, ...]  # diffusers pipeline class names, text-to-video
    i2v_pipelines: tuple[str, ...]  # image-to-video siblings
    defaults: dict[str, Any]  # preset values for a folder/repo of this family that is not a preset
    # (pipe, the pipeline's output with output_type="latent", request) -> latents as the VAE takes
    # them (unpacked, de-normalised, padding dropped): what is saved before the decode.
    finish_latents: Callable[[Any, Any, Any], Any]
    # (pipe, finished latents, seed) -> float frames (f, H, W, 3) in [0, 1]
    decode: Callable[[Any, Any, int], Any]
    # extra keyword arguments for the pipeline call (e.g. LTX's frame_rate), from the request
    call_extras: Callable[[Any], dict[str, Any]] = field(default=lambda request: {})
    # builds (or installs) the family's tiny pipelines into a folder: text-to-video in t2v/, an
    # image-to-video sibling (where the family has one) in i2v/
    build_tiny: Callable[[Path], None] | None = None
    tiny_i2v: bool = True  # whether the tiny build includes the image-to-video sibling
    # the folder of the tiny build that holds its first-and-last-frame pipeline (end frames and
    # bridges): "flf" (a model of its own), "t2v" (the same weights, another pipeline class), or None
    tiny_flf: str | None = None
    tiny_version: int = 1  # bumped when the tiny build gains parts (a new folder is built once)
    # trained tiny weights shipped with the package (``build_tiny`` installs them from there)
    tiny_weights: Path | None = None
    # other shipped folders the tiny build copies parts from (their content names the build too)
    tiny_shares: tuple[Path, ...] = ()
    # Frames the image-to-video pipeline drops from the front of its output (HunyuanVideo-I2V drops
    # the latent frame that holds the image): asked for on top, so a chained shot gets its planned count.
    i2v_dropped_frames: int = 0
    # whether the VAE stays in float32 when the rest runs in bf16/fp16 (Wan's decodes badly in bf16)
    vae_fp32: bool = False
    # how a cast's pictures reach the model besides a start frame: "vace" (reference images into
    # the pipeline call, ``ShotRequest.references``), or None (only as an image-to-video start frame)
    references: str | None = None
    # The pipeline class that draws a clip from a start frame to an end frame, and how a call gives
    # it the two frames: (start, end as PIL images, request) -> the call's keyword arguments.
    flf_pipeline: str | None = None
    flf_call: Callable[[Any, Any, Any], dict[str, Any]] = field(
        default=lambda start, end, request: {"image": start, "last_image": end}
    )
    # A text-to-video class whose weights also draw from a start frame with another class (SkyReels-V2's
    # diffusion forcing): t2v class -> the class that loads the same repo for chains and stills.
    same_weights: dict[str, str] = field(default_factory=dict)
    # (pipe, the call's keyword arguments, request) -> the arguments this pipeline takes: a family
    # whose pipelines name things differently (guidance through a guider, no size on image-to-video)
    adapt_call: Callable[[Any, dict[str, Any], Any], dict[str, Any]] = field(
        default=lambda pipe, kwargs, request: kwargs
    )
    # denoising steps one call runs for a request (diffusion forcing runs them once per window)
    call_steps: Callable[[Any], int] = field(default=lambda request: request.steps)
    # the step caches (`generation.cache`) diffusers' hooks know this family's transformer blocks for
    step_caches: tuple[str, ...] = ("fbc", "magcache")

    @property
    def pipelines(self) -> tuple[str, ...]:
        return self.t2v_pipelines + self.i2v_pipelines

    def sibling_class(self, role: str, named: str | None) -> str:
        """The pipeline class of the image-to-video ("i2v") or first-and-last-frame ("flf") sibling,
        given the class its folder's model_index names (None: not here yet). One repo for both tasks
        (Wan 2.2 TI2V, LTX-Video, SkyReels-V2 diffusion forcing) names its text-to-video class."""
        if named in self.same_weights:
            return self.same_weights[named]
        if role == "flf" and self.flf_pipeline:
            return self.flf_pipeline
        return named if named in self.i2v_pipelines else self.i2v_pipelines[0]


def window_overlap(window: int) -> int:
    """Frames a sliding denoising window shares with the one before it (diffusion forcing's
    ``overlap_history``): about a sixth of the window, 4k+1 (17 of 97, as SkyReels-V2 recommends;
    21 of 121), at least 5 (two latent frames)."""
    return 4 * max(1, round(window / 24)) + 1


def sliding_windows(num_frames: int, window: int) -> int:
    """Windows a diffusion-forcing run of ``num_frames`` makes, ``window`` frames each (1: one call)."""
    if window <= 0 or num_frames <= window:
        return 1
    return 1 + math.ceil((num_frames - window) / (window - window_overlap(window)))


def to_vae(pipe, tensor) -> Any:
    """``tensor`` on the VAE's device, in its dtype."""
    return tensor.to(device=next(pipe.vae.parameters()).device, dtype=pipe.vae.dtype)


def decode_video(pipe, latents, *args) -> Any:
    """Latents as the family's VAE takes them -> uint8 frames (f, h, w, 3): the decode (extra
    ``args`` go to it, e.g. LTX's timestep), then diffusers' post-processing arithmetic ([-1, 1] to
    [0, 1]) and the rounding to 8 bits, done where the video is (on the GPU: a quarter of the bytes
    cross to the CPU, and no float copy of the whole clip is made there)."""
    import torch

    with torch.inference_mode():
        video = pipe.vae.decode(latents, *args, return_dict=False)[0]
        frames = ((video[0].float() / 2 + 0.5).clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
        return frames.permute(1, 2, 3, 0).contiguous().cpu().numpy()


def byte_tokenizer():
    """A byte-level tokenizer (every UTF-8 byte is a token) made with the ``tokenizers`` library,
    wrapped so that transformers' AutoTokenizer saves and reloads it. Tiny models use it instead of
    a downloaded SentencePiece model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return _t5_style(tok)


def _t5_style(tok):
    """A ``tokenizers`` tokenizer with T5's conventions (``</s>`` appended; pad 0, eos 1, unk 2),
    wrapped so that transformers' AutoTokenizer saves and reloads it."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def word_tokenizer(words):
    """A word-level tokenizer over ``words`` (lower-cased, split on whitespace and punctuation; any
    other word is ``<unk>``) made with the ``tokenizers`` library, wrapped so that transformers'
    AutoTokenizer saves and reloads it. The trained tiny model reads its prompts with it."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {tok: i for i, tok in enumerate(["<pad>", "</s>", "<unk>"])}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return _t5_style(tok)


# The words the random-weight tiny models with a word-level tokenizer know (any other is one unknown token).
TINY_WORDS = ("a", "the", "red", "green", "blue", "yellow", "white", "black", "city", "sea", "night", "storm")


def chat_word_tokenizer(chat_template: str | None = None):
    """A word-level tokenizer over ``TINY_WORDS`` with Qwen's chat markers as single tokens (and
    ``<|lead|>``, see ``lead_to``), for the tiny models of families that read prompts with Qwen."""
    tok = word_tokenizer(TINY_WORDS)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|lead|>"]})
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


def lead_to(tok, prefix: str, start: int, *, eos: bool):
    """``tok`` made to put as many ``<|lead|>`` tokens in front as make ``prefix`` (the pipeline's
    prompt template before the prompt) ``start`` tokens long: the pipeline cuts the template off by
    position, as the real tokenizer counts it, so the prompt's own tokens are what the model reads.
    ``eos``: ``</s>`` after the text too."""
    from tokenizers import processors

    lead = start - len(tok(prefix, add_special_tokens=False)["input_ids"])
    marks = [("<|lead|>", tok.convert_tokens_to_ids("<|lead|>"))] + (
        [("</s>", tok.eos_token_id)] if eos else []
    )
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single=" ".join(["<|lead|>"] * max(0, lead) + ["$A"] + (["</s>"] if eos else [])),
        special_tokens=marks,
    )
    return tok


def tiny_t5(vocab_size: int, *, umt5: bool = False):
    """A 2-layer T5 (or UMT5) text encoder with ``TINY_TEXT_DIM`` outputs, seeded."""
    import torch
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config_cls, model_cls = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    torch.manual_seed(0)
    return model_cls(
        config_cls(
            vocab_size=vocab_size,
            d_model=TINY_TEXT_DIM,
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
