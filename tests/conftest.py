"""Shared fixtures: synthetic drum tracks with a known grid, per-test caches that share one build of
the tiny model, and an in-process CLI runner that returns (exit code, stdout, stderr)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mvgen.cli import run as cli_run

REPO = Path(__file__).resolve().parents[1]


def drum_track(
    path: Path,
    *,
    bpm: float = 120.0,
    duration_s: float = 12.0,
    sr: int = 22050,
    channels: int = 1,
    offset_s: float = 0.0,
    fmt: str | None = None,
    subtype: str | None = None,
) -> Path:
    """A kick on every beat (a stronger, lower one with a bass note on each downbeat), a noise
    snare on beats 2 and 4 and a chord change every bar: beat k at offset + k * 60/bpm exactly."""
    rng = np.random.default_rng(0)
    n = int(round(duration_s * sr))
    y = np.zeros(n)
    beat = 60.0 / bpm
    k_len = int(0.15 * sr)
    t = np.arange(k_len) / sr
    kick = np.sin(2 * np.pi * np.cumsum(55 + 90 * np.exp(-t * 35)) / sr) * np.exp(-t / 0.08)
    snare = rng.standard_normal(k_len) * np.exp(-t / 0.05) * 0.4
    chords = [(220.0, 277.2, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7), (164.8, 207.7, 246.9)]
    i = 0
    while True:
        start = offset_s + i * beat
        s = int(round(start * sr))
        if s >= n:
            break
        e = min(n, s + k_len)
        down = i % 4 == 0
        y[s:e] += kick[: e - s] * (1.0 if down else 0.6)
        if i % 4 in (1, 3):
            y[s:e] += snare[: e - s]
        if down:
            bar_len = min(n - s, int(4 * beat * sr))
            tb = np.arange(bar_len) / sr
            chord = chords[(i // 4) % 4]
            pad = sum(np.sin(2 * np.pi * f * tb) for f in chord) * 0.05 * np.exp(-tb / 1.5)
            pad += np.sin(2 * np.pi * chord[0] / 4 * tb) * 0.15 * np.exp(-tb / 0.4)
            y[s : s + bar_len] += pad
        i += 1
    y = y / np.max(np.abs(y)) * 0.8
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    sf.write(str(path), data.astype(np.float32), sr, format=fmt, subtype=subtype)
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """The tiny model built once per session (through the real builder) in a cache of its own."""
    root = tmp_path_factory.mktemp("tiny-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MVGEN_CACHE_DIR", str(root))
        from mvgen.generate.tiny import ensure_tiny

        ensure_tiny()
    return root / "models"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch, tiny_models) -> Path:
    """A fresh MVGEN_CACHE_DIR for this test (empty shot and beat caches), sharing the tiny model."""
    d = tmp_path / "cache"
    d.mkdir()
    (d / "models").symlink_to(tiny_models)
    monkeypatch.setenv("MVGEN_CACHE_DIR", str(d))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return d


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """A fresh MVGEN_CACHE_DIR without the tiny model (for tests that never load a model)."""
    d = tmp_path / "cache"
    d.mkdir()
    monkeypatch.setenv("MVGEN_CACHE_DIR", str(d))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return d


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-500:]!r}, err={self.err[-800:]!r})"


@pytest.fixture
def mvgen(capsys):
    """Run the CLI in-process: ``mvgen("render", "x.yaml")`` -> CliResult."""

    def _run(*args: str) -> CliResult:
        capsys.readouterr()
        code = cli_run([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(int(code), captured.out, captured.err)

    return _run


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
