"""Decoding audio files to float32 waveforms.

Everything is decoded with soundfile (libsndfile): WAV, FLAC, OGG Vorbis, Opus and MP3. M4A/AAC
go through PyAV when the ``m4a`` extra is installed. Header durations are never trusted: files
are read block by block until the decoder stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from mirkit.audio.checks import check_waveform
from mirkit.audio.resample import DEFAULT_QUALITY, resample
from mirkit.errors import AudioDecodeError, ConfigError

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".m4a", ".aac"})
_PYAV_EXTENSIONS = frozenset({".m4a", ".aac"})

#: How several channels become one: ``mean`` averages them, ``first`` keeps channel 0.
ChannelPolicy = Literal["mean", "first"]
CHANNEL_POLICIES: tuple[str, ...] = ("mean", "first")

_BLOCK_FRAMES = 1 << 16
#: MP3 is read in far larger blocks: libsndfile's MPEG decoder loses bit-reservoir data at the boundary
#: of each read (libmpg123 prints "part2_3_length ... too large" and the samples after it differ from a
#: whole-file read), so a file of up to this many frames (about 3 min at 44.1 kHz) is read in one call.
_MP3_BLOCK_FRAMES = 1 << 23


def is_audio_path(path: str | Path) -> bool:
    """True when the file extension is one mirkit decodes."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


@dataclass(frozen=True)
class AudioInfo:
    """What the container header says. ``header_frames`` may be wrong: never size buffers by it."""

    path: str
    sample_rate: int
    channels: int
    header_frames: int
    format: str


def read_info(path: str | Path) -> AudioInfo:
    """Read the header of ``path`` (sample rate, channels, claimed length)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types
        raise _decode_error(path, exc) from exc
    return AudioInfo(str(path), int(info.samplerate), int(info.channels), int(info.frames), str(info.format))


def _decode_error(path: str | Path, exc: BaseException) -> AudioDecodeError:
    p = Path(path)
    if not p.exists():
        error = AudioDecodeError(
            f"{str(path)!r} does not exist (it may have been moved or deleted after the scan). "
            "Check the path, or rescan the input folder."
        )
        error.reason = "missing"
        return error
    size = p.stat().st_size
    if size == 0:
        error = AudioDecodeError(
            f"{str(path)!r} is an empty file (0 bytes). Expected an audio file; re-export or remove it."
        )
        error.reason = "empty_file"
        return error
    return AudioDecodeError(
        f"cannot decode {str(path)!r} ({size} bytes): {exc}. Expected a readable "
        f"{'/'.join(sorted(e.lstrip('.') for e in AUDIO_EXTENSIONS))} file; it may be truncated, corrupt "
        "or not audio. Re-encode it (e.g. `ffmpeg -i in out.flac`) or remove it from the input."
    )


def mix_down(block: np.ndarray, *, channel_policy: str) -> np.ndarray:
    """``(frames, channels)`` -> ``(frames,)`` by the channel policy."""
    if block.ndim == 1:
        return block
    if channel_policy == "mean":
        # channel by channel: same float32 result as ``block.mean(axis=1)``, several times faster
        # than numpy's strided reduction over the short channel axis
        mono = block[:, 0].astype(np.float32, copy=True)
        for channel in range(1, block.shape[1]):
            mono += block[:, channel]
        mono /= np.float32(block.shape[1])
        return mono
    if channel_policy == "first":
        return np.ascontiguousarray(block[:, 0])
    raise ConfigError(f"channel_policy={channel_policy!r} is not one of {CHANNEL_POLICIES}.")


_INT16_SCALE = np.float32(1.0 / 32768.0)


def _mix_down_int16(block: np.ndarray, *, channel_policy: str) -> np.ndarray:
    """:func:`mix_down` of an int16 block, with libsndfile's float scaling (x / 32768) per channel first."""
    channels = block.shape[1] if channel_policy == "mean" else 1
    mono = block[:, 0].astype(np.float32)
    mono *= _INT16_SCALE
    for channel in range(1, channels):
        mono += block[:, channel].astype(np.float32) * _INT16_SCALE
    if channels > 1:
        mono /= np.float32(channels)
    return mono


def iter_decoded_blocks(
    path: str | Path, *, channel_policy: str = "mean", block_frames: int = _BLOCK_FRAMES
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(sample_rate, mono_block)`` pieces of ``path`` until the decoder stops.

    Memory stays bounded by ``block_frames`` whatever the file length (MP3: by ``_MP3_BLOCK_FRAMES``, see there).
    """
    if channel_policy not in CHANNEL_POLICIES:
        raise ConfigError(f"channel_policy={channel_policy!r} is not one of {CHANNEL_POLICIES}.")
    if Path(path).suffix.lower() in _PYAV_EXTENSIONS:
        yield from _iter_pyav_blocks(path, channel_policy=channel_policy)
        return
    import soundfile as sf

    try:
        handle = sf.SoundFile(str(path))
    except Exception as exc:
        raise _decode_error(path, exc) from exc
    if handle.format == "MP3":
        block_frames = max(block_frames, _MP3_BLOCK_FRAMES)
    # 16-bit files are read as integers and scaled here: libsndfile's own int16 -> float32 conversion
    # is about 6x slower, and x / 32768 is exact in float32, so the samples are the same bits
    pcm16 = handle.subtype == "PCM_16"
    with handle:
        sample_rate = int(handle.samplerate)
        if sample_rate <= 0:
            raise AudioDecodeError(f"{str(path)!r} declares sample rate {sample_rate} Hz; expected a positive rate.")
        while True:
            try:
                block = handle.read(block_frames, dtype="int16" if pcm16 else "float32", always_2d=True)
            except Exception as exc:
                raise _decode_error(path, exc) from exc
            if len(block) == 0:
                return
            if pcm16:
                yield sample_rate, _mix_down_int16(block, channel_policy=channel_policy)
            else:
                yield sample_rate, mix_down(block, channel_policy=channel_policy)


def _iter_pyav_blocks(path: str | Path, *, channel_policy: str) -> Iterator[tuple[int, np.ndarray]]:
    try:
        import av
    except ImportError as exc:
        raise AudioDecodeError(
            f"{str(path)!r} is M4A/AAC, which needs PyAV. Install it with `pip install 'mirkit[m4a]'` "
            "or convert the file to FLAC."
        ) from exc
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                array = frame.to_ndarray().astype(np.float32)
                if frame.format.is_planar:
                    array = array.T  # (channels, frames) -> (frames, channels)
                else:
                    array = array.reshape(-1, len(frame.layout.channels))
                yield int(frame.sample_rate), mix_down(array, channel_policy=channel_policy)
    except AudioDecodeError:
        raise
    except Exception as exc:
        raise _decode_error(path, exc) from exc


def load(
    path: str | Path,
    *,
    sample_rate: int | None,
    channel_policy: str = "mean",
    min_duration_s: float = 0.0,
    resample_quality: str = DEFAULT_QUALITY,
) -> tuple[np.ndarray, int]:
    """Decode a whole file to a mono float32 waveform, resampled to ``sample_rate``.

    Args:
        path: audio file.
        sample_rate: target rate in Hz; ``None`` keeps the file's rate.
        channel_policy: ``"mean"`` or ``"first"``.
        min_duration_s: raise :class:`AudioTooShortError` below this length.
        resample_quality: soxr quality recipe.

    Returns:
        ``(waveform, sample_rate)`` with ``waveform`` shaped ``(samples,)``.

    Raises:
        AudioDecodeError: missing, empty, truncated or undecodable file.
        InvalidAudioError: no samples or non-finite samples after decoding.
        AudioTooShortError: shorter than ``min_duration_s``.

    For hour-long files use :func:`mirkit.audio.iter_windows`, which never holds the whole file.
    """
    blocks: list[np.ndarray] = []
    file_rate = 0
    for file_rate, block in iter_decoded_blocks(path, channel_policy=channel_policy):
        blocks.append(block)
    waveform = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    rate = file_rate or (sample_rate or 1)
    check_waveform(waveform, sample_rate=rate, name=str(path))
    if sample_rate is not None and rate != sample_rate:
        waveform = resample(waveform, orig_sample_rate=rate, sample_rate=sample_rate, quality=resample_quality)
        rate = sample_rate
    check_waveform(waveform, sample_rate=rate, min_samples=max(1, round(min_duration_s * rate)), name=str(path))
    return waveform, rate
