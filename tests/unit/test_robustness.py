"""`mirkit robustness`: each perturbation does what its name says, perturbed audio is deterministic, a probe
run's clean score through this path equals its own test score, and bad names fail before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mirkit.audio.effects import pink_noise
from mirkit.errors import UnknownNameError
from mirkit.robustness.perturb import PERTURBATIONS, clip_rng, perturb_file

RATE = 22050


def _band_db(wave: np.ndarray, lo_hz: float, hi_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1 / RATE)
    return 10 * np.log10(spectrum[(freqs >= lo_hz) & (freqs < hi_hz)].sum() + 1e-20)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Two seconds of tones at 100 Hz, 1 kHz and 6 kHz."""
    t = np.arange(2 * RATE) / RATE
    wave = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (100.0, 1000.0, 6000.0)).astype(np.float32)
    path = tmp_path_factory.mktemp("src") / "tones.flac"
    sf.write(path, wave, RATE)
    return path


def _apply(source: Path, tmp_path: Path, name: str) -> tuple[np.ndarray, np.ndarray, Path]:
    written = perturb_file(source, tmp_path / name / "clip", perturbation=name, clip="tones")
    clean, _ = sf.read(source, dtype="float32")
    out, rate = sf.read(written, dtype="float32")
    assert rate == RATE and abs(out.size - clean.size) <= 0.01 * clean.size
    return clean, out[: clean.size], written


def test_level_filters_room_and_noise_do_what_they_say(source, tmp_path):
    clean, louder, _ = _apply(source, tmp_path, "level-plus-12db")
    assert 20 * np.log10(np.abs(louder).max() / np.abs(clean).max()) == pytest.approx(12.0, abs=0.01)
    assert np.abs(louder).max() > 1.0  # written as float: nothing clipped
    _, quieter, _ = _apply(source, tmp_path, "level-minus-12db")
    assert 20 * np.log10(np.abs(quieter).max() / np.abs(clean).max()) == pytest.approx(-12.0, abs=0.01)
    _, low, _ = _apply(source, tmp_path, "lowpass-4khz")
    assert _band_db(clean, 5500, 6500) - _band_db(low, 5500, 6500) > 30  # 6 kHz removed
    assert abs(_band_db(clean, 900, 1100) - _band_db(low, 900, 1100)) < 1  # 1 kHz kept
    _, high, _ = _apply(source, tmp_path, "highpass-300hz")
    assert _band_db(clean, 80, 120) - _band_db(high, 80, 120) > 20  # 100 Hz removed
    assert abs(_band_db(clean, 900, 1100) - _band_db(high, 900, 1100)) < 1
    _, room, _ = _apply(source, tmp_path, "room")
    assert not np.allclose(room, clean, atol=1e-3) and np.corrcoef(room, clean)[0, 1] > 0.5
    for snr in (20, 10):
        _, noisy, _ = _apply(source, tmp_path, f"pink-noise-{snr}db")
        measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2))
        assert measured == pytest.approx(snr, abs=0.1)


def test_pink_noise_falls_3db_per_octave_and_runs_repeat():
    noise = pink_noise(1 << 18, np.random.default_rng(0))
    power = np.abs(np.fft.rfft(noise)) ** 2
    octave = [power[2**k : 2 ** (k + 1)].mean() for k in (8, 12)]  # four octaves apart
    assert 10 * np.log10(octave[0] / octave[1]) == pytest.approx(12.0, abs=1.5)
    a, b = clip_rng("room", "x.flac").standard_normal(4), clip_rng("room", "x.flac").standard_normal(4)
    assert np.array_equal(a, b) and not np.array_equal(a, clip_rng("room", "y.flac").standard_normal(4))


@pytest.mark.parametrize("name, suffix", [("mp3-low", ".mp3"), ("vorbis-low", ".ogg")])
def test_codecs_write_a_real_lossy_file_that_mirkit_decodes(source, tmp_path, name, suffix):
    clean, out, written = _apply(source, tmp_path, name)
    assert written.suffix == suffix and written.stat().st_size < 0.2 * source.stat().st_size
    assert np.corrcoef(out, clean)[0, 1] > 0.8  # the music survives
    assert not np.allclose(out, clean, atol=1e-3)  # but it went through the codec
    before = written.stat().st_mtime_ns
    assert perturb_file(source, tmp_path / name / "clip", perturbation=name, clip="tones") == written
    assert written.stat().st_mtime_ns == before  # a rerun keeps the written file


def test_unknown_perturbation_fails_before_any_work(tmp_path):
    from mirkit.robustness.run import score_run

    with pytest.raises(UnknownNameError, match="pink-noise-10db"):
        score_run(run_dir=tmp_path, task_dir=tmp_path / "genre", out_dir=tmp_path, store=tmp_path,
                  perturbations=["pink-noise-10"])
    assert "room" in PERTURBATIONS and len(PERTURBATIONS) == 10 and "renderer-fluidsynth" in PERTURBATIONS


