"""mvgen: turn a YAML shot list and a music track into a beat-cut text-to-video music video.

Importing this package is cheap: torch, diffusers, librosa and moviepy are imported only by the
stages that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
