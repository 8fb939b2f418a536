"""scripts/train_tiny.py's copy targets: where the attention is taught to look must be where the
synthetic world's content really was one latent frame earlier."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mvgen.media.vision import MOTIONS, synthetic_clip

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import train_tiny  # noqa: E402

FRAMES, HEIGHT, WIDTH = 9, 128, 208
LATENT_FRAMES = 3  # of 8 x 13 tokens: frames 0, 1-4, 5-8


def _tokens(clip: np.ndarray) -> np.ndarray:
    """What each token of the latent clip stands for: the mean luma of its 16 x 16 px block, at the
    video frame a latent frame ends on (0, 4, 8), flattened in the transformer's order."""
    luma = clip[:: train_tiny.LATENT_FRAME] @ np.array([0.299, 0.587, 0.114])
    p = train_tiny.PATCH_PX
    f, h, w = luma.shape
    return luma.reshape(f, h // p, p, w // p, p).mean(axis=(2, 4)).reshape(-1)


@pytest.mark.parametrize("motion", MOTIONS)
def test_copy_targets_point_to_where_the_content_was(motion):
    clip = synthetic_clip("green", motion, FRAMES, HEIGHT, WIDTH, np.random.default_rng(3))
    tokens = _tokens(clip)
    target = train_tiny.copy_targets(motion, LATENT_FRAMES, HEIGHT // 16, WIDTH // 16)
    rows = target.sum(axis=1) > 0
    per_frame = (HEIGHT // 16) * (WIDTH // 16)
    assert not rows[:per_frame].any()  # the first latent frame has nothing before it
    assert np.allclose(target.sum(axis=1)[rows], 1.0)
    # every row looks into the previous latent frame only
    frame_of = np.arange(target.shape[0]) // per_frame
    looked = np.nonzero(target)
    assert (frame_of[looked[1]] == frame_of[looked[0]] - 1).all()
    # most tokens have a source (a pan loses one row or column of tokens a frame at an edge)
    assert rows[per_frame:].mean() > 0.85

    def error(of: str) -> float:  # how far the tokens are from what ``of``'s targets copy
        t = train_tiny.copy_targets(of, LATENT_FRAMES, HEIGHT // 16, WIDTH // 16)
        r = t.sum(axis=1) > 0
        return float(np.abs(t[r] @ tokens - tokens[r]).mean())

    if motion == "zoom in":
        # a zoom's sources fall between tokens (bilinear), and token means blur: not exact, but
        # nearer than any pan's, and pulled towards the centre by the zoom's scale
        assert error(motion) < 0.5 * min(error(pan) for pan in ("left", "right", "up", "down"))
        ys, xs = np.divmod(np.arange(per_frame), WIDTH // 16)
        row = per_frame  # the top left token of the second latent frame
        sy, sx = target[row, :per_frame] @ ys, target[row, :per_frame] @ xs
        cy, cx = (HEIGHT // 16 - 1) / 2, (WIDTH // 16 - 1) / 2
        scale = np.exp(train_tiny.ZOOM_RATE * train_tiny.LATENT_FRAME)
        assert (sy, sx) == pytest.approx((cy - cy / scale, cx - cx / scale))
    else:  # pans and "still": the picture moves by exactly one token a latent frame, or not at all
        assert error(motion) < 1e-6
        if motion != "still":
            assert error("still") > 0.01  # staying put would be wrong


def test_held_out_prompt_forms_are_ones_the_training_cannot_make():
    """The colour words are measured on sentences of forms kept out of training (issue 24): each
    held-out template has words that no training prompt, of either generator, ever contains (their
    unknown words are vowel-less nonsense), so no training prompt is one of them."""
    universe = set(train_tiny.VOCAB) | set(train_tiny.NOUNS) | set(train_tiny.STYLE) | {"is", "turns", ","}
    rng = np.random.default_rng(0)
    for make in train_tiny.PROMPT_FORMS.values():
        for _ in range(500):
            prompt = make(rng, str(rng.choice(train_tiny.COLOURS)), str(rng.choice(MOTIONS)))
            for word in prompt.lower().replace(",", " , ").split():
                assert word in universe or not any(v in word for v in "aeiou"), (word, prompt)
    for template in train_tiny.HELDOUT_TEMPLATES:
        words = template.replace("{c}", "").replace("{m}", "").replace(",", " ").replace(".", " ").split()
        unseen = [w for w in words if w.lower().strip(":;") not in universe]
        assert len(unseen) >= 2, template
    prompts = train_tiny.heldout_prompts()
    assert len(prompts) == 8 * len(train_tiny.HELDOUT_TEMPLATES)
    assert all(colour in prompt for prompt, colour, _ in prompts)


def test_the_script_builds_the_shipped_tokenizers_vocabulary():
    """The default training reproduces the shipped weights' tokenizer: the same words, the same ids."""
    import json

    shipped = json.loads((train_tiny.SHIPPED / "t2v" / "tokenizer" / "tokenizer.json").read_text())
    vocab = shipped["model"]["vocab"]
    assert sorted(vocab, key=vocab.get) == ["<pad>", "</s>", "<unk>", *train_tiny.VOCAB]


def test_varied_training_prompts_put_the_colour_word_in_many_places():
    """`--prompt-forms varied`: the colour word first, last, after a noun, after "is" ... with the
    motion phrase before or after it and filler around both."""
    rng = np.random.default_rng(1)
    positions, followers = set(), set()
    for _ in range(600):
        words = train_tiny.make_varied_prompt(rng, "red", "left").lower().replace(",", " ").split()
        at = words.index("red")
        positions.add("first" if at == 0 else "last" if at == len(words) - 1 else "middle")
        followers.add(words[at - 1] if at else None)
    assert positions == {"first", "middle", "last"}
    assert {"in", "of", "is", "turns"} <= followers
