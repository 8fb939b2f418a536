#!/usr/bin/env python
"""Does a shot start on its storyboard still on ``tiny``, and does a cast member's picture score as
her likeness? One real render (``mvgen render``, the tiny model, its image-to-video sibling):

- **stills**: for every ordered pair of the tiny's eight colours (8 x 7 = 56), a shot whose `image:`
  is a still in colour X (a textured field with a darker disc, 3:2, fitted by `cover`) and whose
  prompt names colour Y. Measured: delta E (CIE76) between the mean colour of the clip's first frame
  and the fitted still's (issue 28: <= 6), and whether its last frame is in colour Y.
- **identity**: as a take chooser. Eight more shots start on a still of colour X with a prompt naming
  X too (the take that keeps the picture's look); for every pair, media/score.py's identity score
  (the fallback) against the still of colour X should rank that take above the one that turned into
  colour Y.

    python scripts/eval_stills.py                 # all 56
    python scripts/eval_stills.py --pairs 16      # a quick look
    python scripts/eval_stills.py --report out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from mvgen.media.clips import read_clip
from mvgen.media.colour import delta_e, rgb_to_lab
from mvgen.media.score import identity
from mvgen.media.stills import fit_still
from mvgen.media.vision import COLOURS, PALETTE, dominant_colour

BEATS = 4


def still(path: Path, colour: str, seed: int) -> Path:
    """A 300 x 200 field of ``colour`` with a soft texture and a darker disc left of centre."""
    rng = np.random.default_rng(seed)
    base = np.array(PALETTE[colour]) * 255.0
    h, w = 200, 300
    yy, xx = np.mgrid[0:h, 0:w]
    texture = 1.0 + 0.12 * np.sin(xx / 9.0 + rng.uniform(0, 6)) * np.sin(yy / 7.0 + rng.uniform(0, 6))
    im = base * texture[..., None]
    im[(xx - 110) ** 2 + (yy - 100) ** 2 < 45**2] *= 0.55
    Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=56)
    ap.add_argument("--report", type=Path)
    args = ap.parse_args()
    pairs = list(itertools.permutations(COLOURS, 2))[: args.pairs]
    pairs += [(c, c) for c in dict.fromkeys(x for x, _ in pairs)]  # the takes that keep the look
    work = Path(tempfile.mkdtemp(prefix="mvgen-stills-eval-"))
    sr = 22050
    duration = len(pairs) * BEATS * 0.5 + 1.0
    t = np.arange(int(duration * sr)) / sr
    sf.write(
        work / "track.wav",
        (0.3 * np.sin(2 * np.pi * 220 * t) * (np.mod(t, 0.5) < 0.1)).astype(np.float32),
        sr,
    )
    rows = []
    for n, (x, y) in enumerate(pairs):
        still(work / f"still-{n:02d}.png", x, n)
        rows.append(
            f"  - {{id: s{n:02d}, prompt: '{y} field, still', image: still-{n:02d}.png, length: {BEATS}}}"
        )
    (work / "stills.yaml").write_text(
        "version: 1\nmodel: tiny\naudio: {path: track.wav, bpm: 120}\nvideo: {width: 832, height: 480, fps: 8}\n"
        "generation: {seed: 3}\ntiming: {unit: beats, fit: trim}\nshots:\n" + "\n".join(rows) + "\n"
    )
    env = {**os.environ, "MVGEN_CACHE_DIR": str(work / "cache")}
    started = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "mvgen", "render", str(work / "stills.yaml"), "-q"], env=env,
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    manifest = json.loads((work / "stills.json").read_text())
    results = []
    for n, ((x, y), row) in enumerate(zip(pairs, manifest["shots"], strict=True)):
        clip = read_clip(next((work / "cache" / "shots").glob(f"*/{row['cache_key']}/clip.*")))
        h, w = clip.shape[1:3]
        fitted = fit_still(work / f"still-{n:02d}.png", w, h, "cover")
        first = delta_e(rgb_to_lab(clip[0].reshape(-1, 3).mean(0)), rgb_to_lab(fitted.reshape(-1, 3).mean(0)))
        results.append({"still": x, "prompt": y, "first_frame_delta_e": round(first, 2),
                        "last_colour": dominant_colour(clip[-1]), "identity": identity(clip, [("x", fitted)])})  # fmt: skip
    kept = {r["still"]: r["identity"] for r in results if r["still"] == r["prompt"]}
    results, same = (
        [r for r in results if r["still"] != r["prompt"]],
        [r for r in results if r["still"] == r["prompt"]],
    )
    de = np.array([r["first_frame_delta_e"] for r in results + same])
    turned = np.mean([r["last_colour"] == r["prompt"] for r in results])
    ranked = np.mean([kept[r["still"]] > r["identity"] for r in results])
    print(f"{len(results) + len(same)} shots from stills, render {seconds:.1f} s")
    print(
        f"first frame delta E to the still: median {np.median(de):.2f}, max {de.max():.2f}, <= 6: {np.mean(de <= 6):.0%}"
    )
    print(f"last frame in the prompt's colour: {turned:.0%}")
    print(f"identity against the still: the take that kept its colour ranks above the one that turned: "
          f"{ranked:.0%} (median {np.median(list(kept.values())):.2f} against {np.median([r['identity'] for r in results]):.2f})")  # fmt: skip
    print(f"({len(results)} pairs and {len(same)} shots kept in their still's colour)")
    if args.report:
        args.report.write_text(json.dumps(results + same, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
