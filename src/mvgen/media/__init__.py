"""Media: the ffmpeg wrapper, per-shot clips and final assembly. The only package importing moviepy."""
