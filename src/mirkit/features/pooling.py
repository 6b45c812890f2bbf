"""Accumulates one item's layer outputs across its windows into clip vectors (and frames)."""

from __future__ import annotations

import math

import numpy as np
import torch

from mirkit.errors import InvalidAudioError


class ItemAccumulator:
    """Frame-weighted mean over all windows of an item, per layer; optionally keeps the frames.

    Frames of overlapping windows are counted once per window that holds them.
    """

    def __init__(self, layers: tuple[int, ...], frame_rates_hz: dict[int, float], *, keep_frames: bool) -> None:
        self.layers = layers
        self.frame_rates_hz = frame_rates_hz
        self.keep_frames = keep_frames
        self.sums: dict[int, np.ndarray] = {}
        self.counts = {layer: 0 for layer in layers}
        self.frames: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
        self.times: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
        self.windows_expected: int | None = None
        self.windows_done = 0
        self.duration_s = 0.0
        self.level_power: dict[int, float] = {}  # second -> mean power of the encoder's input (see add_level)

    def add_level(self, wave: np.ndarray, *, start: int, sample_rate: int) -> None:
        """Record the mean power of each whole second of a window (``start``: its first sample in the file).

        Seconds are aligned to the file, so overlapping windows give the same values; a second that
        a window holds only part of is measured over that part.
        """
        if len(wave) == 0:
            return
        first, last = start // sample_rate, (start + len(wave) - 1) // sample_rate
        edges = np.clip(np.arange(first, last + 2) * sample_rate - start, 0, len(wave))
        power = np.square(wave, dtype=np.float64)
        sums = np.add.reduceat(power, edges[:-1]) if len(edges) > 1 else power.sum(keepdims=True)
        for second, total, begin, end in zip(range(first, last + 1), sums, edges[:-1], edges[1:]):
            if end > begin and second not in self.level_power:
                self.level_power[second] = float(total) / (end - begin)

    def level_dbfs(self) -> list[float]:
        """RMS level of each second in dBFS (-120 for digital silence), 0.1 dB steps."""
        if not self.level_power:
            return []
        count = max(self.level_power) + 1
        return [round(10 * math.log10(max(self.level_power.get(s, 0.0), 1e-12)), 1) for s in range(count)]

    def add(self, layer: int, frames: np.ndarray, *, start_s: float) -> None:
        """Add one window's valid frames ``(n, dim)`` of ``layer``, starting at ``start_s`` in the file."""
        frames = frames.astype(np.float64, copy=False)
        if layer in self.sums:
            self.sums[layer] += frames.sum(axis=0)
        else:
            self.sums[layer] = frames.sum(axis=0)
        self.counts[layer] += len(frames)
        if self.keep_frames:
            self.frames[layer].append(frames.astype(np.float32))
            self.times[layer].append(start_s + np.arange(len(frames)) / self.frame_rates_hz[layer])

    def add_sum(self, layer: int, frame_sum: np.ndarray, count: int) -> None:
        """Add one window's already summed valid frames of ``layer`` (``(dim,)``, ``count`` frames).

        Used when the sum was taken on the accelerator (pooled recipes on CUDA), so only one
        vector per window and layer crosses to the host instead of every frame.
        """
        if self.keep_frames:
            raise ValueError("add_sum cannot be used when frames are kept; use add().")
        frame_sum = frame_sum.astype(np.float64, copy=False)
        if layer in self.sums:
            self.sums[layer] += frame_sum
        else:
            self.sums[layer] = frame_sum.copy()
        self.counts[layer] += int(count)

    @property
    def complete(self) -> bool:
        return self.windows_expected is not None and self.windows_done == self.windows_expected

    def finish(self, *, name: str, dtype: str) -> dict[str, np.ndarray]:
        """Arrays to store: ``pooled_<layer>`` and, when kept, ``frames_<layer>`` / ``times_<layer>``."""
        arrays: dict[str, np.ndarray] = {}
        for layer in self.layers:
            if self.counts[layer] == 0:
                raise InvalidAudioError(f"{name!r} produced no frames for layer {layer}; it is too short for this "
                                        "encoder's patch size.", reason="too_short")
            pooled = self.sums[layer] / self.counts[layer]
            if not np.isfinite(pooled).all():
                raise InvalidAudioError(f"{name!r}: the encoder produced non-finite features at layer {layer}.",
                                        reason="non_finite_features")
            arrays[f"pooled_{layer}"] = pooled.astype(dtype)
            if self.keep_frames:
                arrays[f"frames_{layer}"] = np.concatenate(self.frames[layer]).astype(dtype)
                arrays[f"times_{layer}"] = np.concatenate(self.times[layer]).astype(np.float64)
        return arrays


class PendingSums:
    """Per window and layer, the float64 sum of the valid frames, summed where the tensors are and
    fetched to the host without waiting: on a GPU the copy goes to pinned memory behind an event,
    so the host can queue the next batch before this one is read (:meth:`result` waits).

    ``hidden[layer]`` is ``(batch, frames, dim)`` and ``lengths[layer]`` ``(batch,)``.
    """

    def __init__(self, hidden: dict[int, torch.Tensor], lengths: dict[int, torch.Tensor],
                 layers: tuple[int, ...]) -> None:
        sums, counts = [], []
        for layer in layers:
            h = hidden[layer]
            valid = lengths[layer].to(h.device, non_blocking=True)
            mask = torch.arange(h.shape[1], device=h.device)[None, :] < valid[:, None]
            sums.append((h.float() * mask[..., None]).sum(dim=1, dtype=torch.float64))
            counts.append(valid.long())
        self.dims = [s.shape[1] for s in sums]
        joined, stacked = torch.cat(sums, dim=1), torch.stack(counts)
        self.event = None
        if joined.device.type == "cuda":
            self.sums = torch.empty(joined.shape, dtype=joined.dtype, pin_memory=True)
            self.counts = torch.empty(stacked.shape, dtype=stacked.dtype, pin_memory=True)
            self.sums.copy_(joined, non_blocking=True)
            self.counts.copy_(stacked, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        else:
            self.sums, self.counts = joined.cpu(), stacked.cpu()

    def result(self) -> tuple[list[np.ndarray], np.ndarray]:
        """``(sums, counts)``: one ``(batch, dim)`` float64 array per layer and a ``(layers, batch)`` array."""
        if self.event is not None:
            self.event.synchronize()
        joined = self.sums.numpy()
        return np.split(joined, np.cumsum(self.dims)[:-1], axis=1), self.counts.numpy()

