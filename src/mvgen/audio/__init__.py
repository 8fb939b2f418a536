"""Audio: probing a track and finding its beat grid. The only package that imports librosa."""

from mvgen.audio.grid import BeatGrid
from mvgen.audio.probe import AudioInfo, probe_audio

__all__ = ["AudioInfo", "BeatGrid", "probe_audio"]
