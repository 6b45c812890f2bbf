"""Shared fixtures: synthetic audio written in code, never downloaded."""

from __future__ import annotations

import importlib.util
import json
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


#: a tiny HuBERT shape: random checkpoints of it build in a second
TINY_HUBERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=[16] * 7,
                   num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)


@pytest.fixture(scope="session")
def hubert(tmp_path_factory) -> str:
    """A random HuBERT checkpoint folder of the tiny shape, in the published layout (nothing downloads)."""
    from mirkit.encoders.hf import init_random_checkpoint

    return str(init_random_checkpoint("hubert-base", out_dir=tmp_path_factory.mktemp("hubert"),
                                      config_overrides=TINY_HUBERT))


def make_corpus(root: Path, *, files: int = 6, seconds: float = 6.0) -> Path:
    """Harmonic tones with noise at 24 kHz (as `mirkit data corpus` stores them) and their corpus.jsonl."""
    rng = np.random.default_rng(0)
    rows = []
    (root / "audio").mkdir(parents=True, exist_ok=True)
    for i in range(files):
        t = np.arange(int(seconds * 24000)) / 24000
        f0 = 110 * 2 ** (rng.integers(0, 36) / 12)
        y = 0.2 * np.sin(2 * np.pi * f0 * t) + 0.05 * np.sin(4 * np.pi * f0 * t) + 0.01 * rng.standard_normal(len(t))
        sf.write(root / "audio" / f"c{i}.flac", y.astype(np.float32), 24000)
        rows.append({"path": f"audio/c{i}.flac", "duration_s": seconds, "source": "test", "piece": f"test:{i}"})
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def program():
    from mirkit.data import fluidsynth

    status: dict[str, str] = {}
    found = fluidsynth.ensure(status)
    if found is None:
        pytest.skip(f"renderer tier: {status['fluidsynth']}")
    return found
