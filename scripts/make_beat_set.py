"""Write the generated beat-evaluation set: full mixes with exact ground truth (tests/music.py).

    python scripts/make_beat_set.py --out beat_set/

One ``NAME.wav`` (22.05 kHz mono) and ``NAME.beats`` (``time<TAB>position in bar``, 1 = downbeat,
the format of ../shared/eval/beats) per piece: steady pop, a swing shuffle, 6/8, 7/8, syncopated
funk, a reggae one-drop, a half-time section, a quiet intro, live-drum jitter, a drumless ballad,
a ritardando, an accelerando, rubato piano and a tempo step. ``scripts/eval_beats.py --generated``
renders the same set into a temporary folder and scores it; this script is for looking at it, or
for scoring it with other trackers. It refuses to write over files it did not make.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    from tests import music

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to write the set into")
    args = ap.parse_args()
    pieces = music.all_pieces()
    taken = [
        p for piece in pieces for p in (args.out / f"{piece.name}.wav", args.out / f"{piece.name}.beats")
    ]
    if any(p.exists() for p in taken):
        print(f"{args.out}: already holds files of the set; choose an empty folder", file=sys.stderr)
        return 2
    for piece in pieces:
        wav, _ = music.write(piece, args.out)
        kind = "steady" if piece.steady else "curved"
        print(f"{wav}  {len(piece.beats_s)} beats, {piece.tempo_bpm:.1f} BPM median, {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
