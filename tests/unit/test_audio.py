"""Decoding, checks and windowing on every kind of bad input the issue lists."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from mirkit.audio import iter_windows, load
from mirkit.errors import (
    AudioDecodeError,
    AudioTooShortError,
    ConfigError,
    InvalidAudioError,
)
from tests.conftest import sine, write


def test_load_resamples_and_keeps_frequency(tmp_path):
    for rate in (8000, 44100, 96000):
        path = write(tmp_path / f"s{rate}.wav", sine(440, 1.0, rate), rate)
        y, sr = load(path, sample_rate=16000)
        assert sr == 16000 and abs(len(y) - 16000) <= 1
        spectrum = np.abs(np.fft.rfft(y))
        assert abs(np.argmax(spectrum) * 16000 / len(y) - 440) < 2


def test_eight_channel_48k_is_mixed_by_policy(tmp_path):
    data = sine(440, 0.5, 48000, channels=8)
    path = write(tmp_path / "multi.wav", data, 48000, subtype="FLOAT")
    mean, _ = load(path, sample_rate=None, channel_policy="mean")
    first, _ = load(path, sample_rate=None, channel_policy="first")
    np.testing.assert_allclose(mean, data.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(first, data[:, 0], atol=1e-6)
    with pytest.raises(ConfigError, match="channel_policy='left'"):
        load(path, sample_rate=None, channel_policy="left")


def test_empty_wav_zero_frames(tmp_path):
    path = write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(InvalidAudioError, match="holds no audio samples") as info:
        load(path, sample_rate=16000)
    assert info.value.reason == "empty"


def test_zero_byte_file(tmp_path):
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match=r"empty file \(0 bytes\)") as info:
        load(path, sample_rate=16000)
    assert info.value.reason == "empty_file"


def test_random_bytes_with_audio_extension(tmp_path):
    for ext in (".wav", ".flac", ".ogg", ".mp3"):
        path = tmp_path / f"junk{ext}"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        with pytest.raises(AudioDecodeError, match="cannot decode"):
            load(path, sample_rate=16000)


def test_truncated_wav_decodes_only_what_is_there(tmp_path):
    path = write(tmp_path / "full.wav", sine(440, 2.0, 16000), 16000, subtype="PCM_16")
    data = path.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 16000 * 2 // 2])  # header + 0.5 s; the header still claims 2 s
    y, _ = load(cut, sample_rate=16000)
    assert len(y) == 8000  # never trust header durations
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(data[:44])
    with pytest.raises(InvalidAudioError, match="no audio samples"):
        load(header_only, sample_rate=16000)


def test_truncated_flac_is_a_named_error_or_partial_audio(tmp_path):
    path = write(tmp_path / "full.flac", sine(440, 3.0, 16000), 16000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    try:
        y, _ = load(cut, sample_rate=16000)
    except AudioDecodeError as exc:
        assert "cut.flac" in str(exc)
    else:
        assert 0 < len(y) < 3 * 16000


def test_non_finite_samples_report_time(tmp_path):
    data = sine(440, 2.0, 16000)
    data[24000] = np.nan
    data[30000] = np.inf
    path = write(tmp_path / "nan.wav", data, 16000, subtype="FLOAT")
    with pytest.raises(InvalidAudioError, match=r"2 non-finite samples.*first at 1\.500 s") as info:
        load(path, sample_rate=16000)
    assert info.value.reason == "non_finite"
    with pytest.raises(InvalidAudioError, match=r"first at 1\.500 s"):
        list(iter_windows(path, sample_rate=8000, window_s=1.0, hop_s=1.0))


def test_one_sample_clip_is_too_short(tmp_path):
    path = write(tmp_path / "one.wav", np.array([0.1], dtype=np.float32), 16000)
    with pytest.raises(AudioTooShortError, match=r"at least 2\.9760 s") as info:
        load(path, sample_rate=16000, min_duration_s=2.976)
    assert info.value.reason == "too_short"
    with pytest.raises(AudioTooShortError):
        list(iter_windows(path, sample_rate=16000, window_s=10, hop_s=10, min_samples=47616))


def test_missing_file(tmp_path):
    with pytest.raises(AudioDecodeError, match="does not exist") as info:
        load(tmp_path / "gone.wav", sample_rate=16000)
    assert info.value.reason == "missing"


@pytest.mark.parametrize("window_s,hop_s", [(1.0, 1.0), (1.0, 0.5), (0.75, 0.3)])
def test_windows_cover_file_and_match_whole_decode(tmp_path, window_s, hop_s):
    path = write(tmp_path / "a.wav", np.random.default_rng(1).standard_normal(44100 * 3).astype(np.float32) * 0.1, 44100)
    whole, _ = load(path, sample_rate=16000)
    windows = list(iter_windows(path, sample_rate=16000, window_s=window_s, hop_s=hop_s, min_samples=4000))
    assert windows[-1].is_last and not any(w.is_last for w in windows[:-1])
    assert windows[-1].start_sample + len(windows[-1].waveform) == len(whole)
    for w in windows:
        assert len(w.waveform) >= 4000
        np.testing.assert_allclose(w.waveform, whole[w.start_sample : w.start_sample + len(w.waveform)], atol=1e-5)


def test_window_arguments_are_checked(tmp_path):
    path = write(tmp_path / "a.wav", sine(440, 1.0, 16000), 16000)
    with pytest.raises(ConfigError, match="hop_s=2.0 must be in"):
        list(iter_windows(path, sample_rate=16000, window_s=1.0, hop_s=2.0))
    with pytest.raises(ConfigError, match="window_s=0"):
        list(iter_windows(path, sample_rate=16000, window_s=0, hop_s=0))


def test_one_hour_file_streams_in_bounded_memory(tmp_path):
    rate = 8000
    path = tmp_path / "hour.wav"
    block = (np.sin(np.arange(rate * 60) * 0.05) * 0.2).astype(np.float32)
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as handle:
        for _ in range(60):
            handle.write(block)
    assert os.path.getsize(path) > 50e6
    tracemalloc.start()
    total = 0
    count = 0
    for window in iter_windows(path, sample_rate=16000, window_s=30.0, hop_s=30.0):
        total = window.start_sample + len(window.waveform)
        count += 1
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 120 and abs(total - 3600 * 16000) <= 2
    whole_file_bytes = 3600 * 16000 * 4
    assert peak < whole_file_bytes / 10, f"peak {peak / 1e6:.1f} MB is not bounded"


def test_short_tail_is_absorbed_or_extended_back(tmp_path):
    path = write(tmp_path / "a.wav", np.random.default_rng(2).standard_normal(16000 * 30).astype(np.float32) * 0.1, 16000)
    absorbed = list(iter_windows(path, sample_rate=16000, window_s=29.92, hop_s=29.92, min_samples=47616,
                                 max_samples=16000 * 31))
    assert [(w.start_sample, len(w.waveform)) for w in absorbed] == [(0, 480000)]
    extended = list(iter_windows(path, sample_rate=16000, window_s=29.92, hop_s=29.92, min_samples=47616))
    assert [(w.start_sample, len(w.waveform)) for w in extended] == [(0, 478720), (480000 - 47616, 47616)]


@pytest.mark.parametrize("ext,fmt,subtype,rate", [(".wav", "WAV", "PCM_16", 44100), (".flac", "FLAC", "PCM_16", 44100),
                                                  (".ogg", "OGG", "VORBIS", 44100), (".opus", "OGG", "OPUS", 48000),
                                                  (".mp3", "MP3", "MPEG_LAYER_III", 44100)])
def test_every_codec_decodes_and_resamples(tmp_path, ext, fmt, subtype, rate):
    path = tmp_path / f"tone{ext}"
    data = sine(440, 1.0, rate, channels=2)
    with sf.SoundFile(path, "w", samplerate=rate, channels=2, format=fmt, subtype=subtype) as handle:
        for start in range(0, len(data), 4096):  # block writes: one-shot OGG writes can crash libsndfile
            handle.write(data[start : start + 4096])
    y, sr = load(path, sample_rate=16000)
    assert sr == 16000 and abs(len(y) / 16000 - 1.0) < 0.1  # codecs may pad a few ms
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 440) < 3


def test_mp3_decodes_as_a_whole_file_read_does(tmp_path):
    """libsndfile's MPEG decoder loses bit-reservoir data at the boundary of each read call: a low-bitrate
    MP3 read in 65,536-frame blocks differed from a whole-file read by up to 0.4 (full scale 1)."""
    from mirkit.audio.io import iter_decoded_blocks

    rate, rng = 22050, np.random.default_rng(0)
    t = np.arange(12 * rate) / rate
    x = np.zeros_like(t)
    for k in range(24):  # a note every half second (five harmonics) and a noise burst (a drum) on each
        f, s = 110 * 2 ** (rng.integers(0, 24) / 12), int(k * 0.5 * rate)
        e = min(t.size, s + rate)
        x[s:e] += sum(0.1 / h * np.sin(2 * np.pi * f * h * t[s:e]) for h in range(1, 6)) * np.exp(-3 * (t[s:e] - t[s]))
        x[s : s + 2000] += 0.3 * rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300)
    path = tmp_path / "music.mp3"
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, format="MP3", subtype="MPEG_LAYER_III",
                      compression_level=0.9) as handle:
        handle.write((x / np.abs(x).max() * 0.5).astype(np.float32))
    whole, _ = sf.read(path, dtype="float32")
    blocks = np.concatenate([b for _, b in iter_decoded_blocks(path, block_frames=1 << 16)])
    assert blocks.shape == whole.shape and np.abs(blocks - whole).max() < 1e-6
    loaded, _ = load(path, sample_rate=None)
    assert np.abs(loaded - whole).max() < 1e-6


def test_mel_basis_is_librosa_and_cached(tmp_path, monkeypatch):
    import librosa

    from mirkit.audio.filters import mel_basis

    monkeypatch.setenv("MIRKIT_CACHE", str(tmp_path))
    first = mel_basis(sample_rate=16000, n_fft=512, n_mels=96)
    np.testing.assert_array_equal(first, librosa.filters.mel(sr=16000, n_fft=512, n_mels=96))
    [saved] = (tmp_path / "filters").glob("mel-16000-512-96-librosa*.npy")
    np.save(saved, np.full_like(first, 7.0))  # the next call reads the file (no librosa): it returns what is there
    assert (mel_basis(sample_rate=16000, n_fft=512, n_mels=96) == 7.0).all()


@pytest.mark.parametrize("channels,policy", [(1, "mean"), (2, "mean"), (3, "mean"), (2, "first")])
def test_16_bit_files_decode_to_the_same_bits_as_libsndfile_floats(tmp_path, channels, policy):
    from mirkit.audio.io import iter_decoded_blocks, mix_down

    rng = np.random.default_rng(channels)
    samples = rng.integers(-32768, 32767, size=(70_000, channels), dtype=np.int16)  # more than one block
    path = tmp_path / "pcm16.wav"
    sf.write(path, samples, 22050, subtype="PCM_16")
    fast = np.concatenate([block for _, block in iter_decoded_blocks(path, channel_policy=policy)])
    reference = mix_down(sf.read(path, dtype="float32", always_2d=True)[0], channel_policy=policy)
    assert fast.dtype == np.float32
    np.testing.assert_array_equal(fast.view(np.uint32), reference.view(np.uint32))
