"""Frames a pipeline sized itself (HunyuanVideo 1.5's image-to-video picks a resolution bucket from
the start image) are brought to the plan's size without stretching."""

import numpy as np

from mvgen.generate.calls import fit_frames


def test_frames_of_another_aspect_are_cropped_to_the_plan_s_aspect_not_stretched():
    # Two frames 96 high and 192 wide: blue in the middle 112 columns, red side bands 40 wide.
    frames = np.zeros((2, 96, 192, 3), dtype=np.uint8)
    frames[..., 0] = 255
    frames[:, :, 40:152] = (0, 0, 255)
    # A square plan: the centre 96x96 is kept, all blue; the side bands are cropped away (a stretch
    # would squeeze them into the outer 13 columns on each side).
    out = fit_frames(frames, 64, 64)
    assert out.shape == (2, 64, 64, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - (0, 0, 255)).max() <= 2
    # A frame already at the plan's size is returned as it is.
    assert fit_frames(out, 64, 64) is out
    # The same aspect at another size is scaled, colours and layout kept.
    half = fit_frames(frames, 96, 48)
    assert half.shape == (2, 48, 96, 3)
    assert (half[:, :, :18, 0] > 250).all() and (half[:, :, 22:74, 2] > 250).all()
