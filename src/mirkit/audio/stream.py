"""Cut a file of any length into analysis windows while decoding it block by block.

Memory stays bounded by about one window plus one decoded block, so an hour-long 8-channel
96 kHz file costs no more than a short clip.

Windowing policy (part of every feature recipe):
- windows start at ``0, hop, 2*hop, ...`` and are ``window`` long;
- a file shorter than one window yields one window holding the whole file;
- a tail shorter than ``min_samples`` after a full window is absorbed into that window when the
  result is at most ``max_samples`` long (so a 30.0 s file is one window for a 29.92 s window);
- otherwise audio after the last full window yields one tail window ``[next_start, end)``; when that
  tail is shorter than ``min_samples`` it is extended backwards (overlapping the previous window)
  to ``min_samples``. No audio is dropped and no window is padded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.audio.checks import check_waveform
from mirkit.audio.io import iter_decoded_blocks
from mirkit.audio.resample import DEFAULT_QUALITY
from mirkit.errors import ConfigError


@dataclass(frozen=True)
class Window:
    """One analysis window of a file, at the target sample rate."""

    index: int
    start_sample: int
    waveform: np.ndarray  # (samples,) float32
    is_last: bool


class _Resampler:
    """Streams blocks through soxr; a no-op when the rates match."""

    def __init__(self, orig_sample_rate: int, sample_rate: int, quality: str) -> None:
        self.stream = None
        if orig_sample_rate != sample_rate:
            import soxr

            self.stream = soxr.ResampleStream(orig_sample_rate, sample_rate, 1, dtype="float32", quality=quality)

    def __call__(self, block: np.ndarray, *, last: bool) -> np.ndarray:
        if self.stream is None:
            return block
        return self.stream.resample_chunk(block, last=last)


def _validate(window_s: float, hop_s: float) -> None:
    if not window_s > 0:
        raise ConfigError(f"window_s={window_s!r} must be a positive number of seconds (e.g. 30.0).")
    if not 0 < hop_s <= window_s:
        raise ConfigError(f"hop_s={hop_s!r} must be in (0, window_s={window_s}]; gaps between windows would drop audio.")


def iter_windows(
    path: str | Path,
    *,
    sample_rate: int,
    window_s: float,
    hop_s: float,
    min_samples: int = 1,
    max_samples: int | None = None,
    channel_policy: str = "mean",
    resample_quality: str = DEFAULT_QUALITY,
) -> Iterator[Window]:
    """Decode ``path`` in blocks, mix down, resample, check, and yield analysis windows.

    Raises the same errors as :func:`mirkit.audio.load` (decode errors, empty, non-finite,
    too short), naming the file; non-finite samples are reported with their time in the file.
    """
    # Longer than most functions on purpose: one generator holds the decode buffer, the streaming
    # resampler and the window bookkeeping (next start, emitted end, the held-back last window);
    # split into helpers they would pass seven mutable values back and forth every window. Tests:
    # windows equal slices of the whole decoded file, short tails, and bounded memory on a 1-hour file.
    _validate(window_s, hop_s)
    window = max(1, round(window_s * sample_rate))
    hop = max(1, round(hop_s * sample_rate))
    max_samples = window if max_samples is None else max(window, max_samples)
    name = str(path)
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # sample index (target rate) of buffer[0]
    next_start = 0
    emitted_end = 0
    index = 0
    resampler: _Resampler | None = None
    decoded_in = 0
    file_rate = sample_rate
    pending: Window | None = None  # held back one step so the last window can be flagged

    def take(start: int, end: int) -> np.ndarray:
        return buffer[start - buffer_start : end - buffer_start].copy()

    blocks = iter_decoded_blocks(path, channel_policy=channel_policy)
    exhausted = False
    while True:
        # decode until the next window (plus a possible short tail) is covered or the file ends;
        # pieces are joined once per window, not once per block
        pieces = [buffer]
        covered = buffer_start + len(buffer)
        while not exhausted and covered < next_start + window + min_samples:
            try:
                file_rate, block = next(blocks)
            except StopIteration:
                exhausted = True
                if resampler is not None:
                    pieces.append(resampler(np.zeros(0, dtype=np.float32), last=True))
                break
            check_waveform(block, sample_rate=file_rate, name=name, offset_s=decoded_in / file_rate)
            decoded_in += len(block)
            if resampler is None:
                resampler = _Resampler(file_rate, sample_rate, resample_quality)
            pieces.append(resampler(block, last=False))
            covered += len(pieces[-1])
        if len(pieces) > 1:
            buffer = np.concatenate(pieces)
        total = buffer_start + len(buffer)
        if exhausted and next_start + window < total < next_start + window + min_samples \
                and total - next_start <= max_samples:  # absorb a short tail into this window
            current = Window(index, next_start, take(next_start, total), True)
            emitted_end = total
            next_start = total
        elif total >= next_start + window:
            current = Window(index, next_start, take(next_start, next_start + window), False)
            emitted_end = next_start + window
            next_start += hop
        elif exhausted and total > emitted_end:
            start = next_start
            if total - start < min_samples:
                start = max(0, total - min_samples)
            current = Window(index, start, take(max(start, buffer_start), total), True)
            emitted_end = total
        else:
            break
        if pending is not None:
            yield pending
        pending = current
        index += 1
        # keep only what a later window (or a backwards-extended tail) can still need
        keep_from = max(0, min(next_start, emitted_end - max(min_samples, 1)) - window)
        if keep_from > buffer_start:
            buffer = buffer[keep_from - buffer_start :]
            buffer_start = keep_from
    if pending is None:
        check_waveform(np.zeros(0, dtype=np.float32), sample_rate=file_rate, name=name)
        return
    if emitted_end < min_samples:  # the whole file fits in this one window
        check_waveform(pending.waveform, sample_rate=sample_rate, min_samples=min_samples, name=name)
    yield Window(pending.index, pending.start_sample, pending.waveform, True)
