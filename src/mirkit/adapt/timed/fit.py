"""Fit a frame-level head on frozen features and score it with decoded outputs.

Protocol (the clip-level probe's, per frame): standardise every layer with training-frame
statistics; for each learning rate of a small grid train with AdamW (a per-frame head on shuffled
batches of frames, the temporal head on batches of whole clips, padding masked out of the loss), stop after ``patience`` epochs without a lower
validation loss and keep the best weights; decode the validation clips and keep the learning rate
with the best decoded validation headline (beat F-measure, chord ``majmin``); decode the test clips
once with that head. Everything is seeded; the test split is never looked at before the choice.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mirkit.adapt.config import FrameProbeConfig
from mirkit.adapt.fit import standardiser
from mirkit.adapt.probe import ProbeResult
from mirkit.adapt.timed.heads import FrameHead, StackedFrameHeads
from mirkit.kinds import FrameKind
from mirkit.kinds.labels import IGNORE

FRAME_BATCH = 4096  # frames per step of a per-frame (linear, MLP) head


@dataclass
class Clip:
    """One clip's frozen frames ``(layers, frames, dim)``, frame times, targets and labels."""

    frames: np.ndarray
    times_s: np.ndarray
    target: np.ndarray
    labels: dict[str, object]
    duration_s: float


def _batches(clips: list[Clip], order: np.ndarray, size: int):
    for start in range(0, len(order), size):
        chosen = [clips[i] for i in order[start : start + size]]
        longest = max(c.frames.shape[1] for c in chosen)
        x = np.zeros((len(chosen), chosen[0].frames.shape[0], longest, chosen[0].frames.shape[2]), dtype=np.float32)
        target_shape = (len(chosen), longest) + chosen[0].target.shape[1:]
        y = np.full(target_shape, IGNORE if chosen[0].target.dtype == np.int64 else 0, dtype=chosen[0].target.dtype)
        mask = np.zeros((len(chosen), longest), dtype=bool)
        for i, clip in enumerate(chosen):
            n = clip.frames.shape[1]
            x[i, :, :n], y[i, :n], mask[i, :n] = clip.frames, clip.target, True
        yield torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask)


def frame_loss(kind: FrameKind, logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None,
               pos_weight: torch.Tensor | None) -> torch.Tensor:
    """Mean loss over the frames ``mask`` keeps (``None``: every frame)."""
    if mask is not None:
        logits, y = logits[mask], y[mask]
    else:
        logits, y = logits.reshape(-1, logits.shape[-1]), y.reshape(-1, *y.shape[2:])
    if kind.categorical:
        return nn.functional.cross_entropy(logits, y, ignore_index=IGNORE)
    return nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)


def positive_weight(kind: FrameKind, targets: list[np.ndarray]) -> torch.Tensor | None:
    """Per-output weight of the positive frames in the binary losses (beat, transcription, onsets): the
    ratio of negative to positive training frames, capped at 20 (a beat is one frame in ~20 at 43 fps)."""
    if kind.categorical:
        return None
    positive = np.concatenate(targets).mean(axis=0).clip(1e-3, None)
    return torch.tensor((1 - positive) / positive, dtype=torch.float32).clamp(max=20.0)


def _stacked_loss(kind: FrameKind, logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor | None, *,
                  per_copy: bool = False) -> torch.Tensor:
    """The sum over copies of each copy's mean loss (``per_copy``: the ``(copies,)`` losses), in one call:
    ``logits`` is ``(copies, frames, outputs)``, ``y`` the shared ``(frames, ...)`` targets."""
    copies = logits.shape[0]
    if kind.categorical:
        losses = nn.functional.cross_entropy(logits.permute(0, 2, 1), y.expand(copies, -1), ignore_index=IGNORE,
                                             reduction="none")
        counted = (y != IGNORE).sum().clamp(min=1)
        values = losses.sum(dim=1) / counted
    else:
        losses = nn.functional.binary_cross_entropy_with_logits(logits, y.expand_as(logits), pos_weight=pos_weight,
                                                                reduction="none")
        values = losses.mean(dim=(1, 2))
    return values if per_copy else values.sum()


def _activations(model: FrameHead, kind: FrameKind, clips: list[Clip]) -> list[np.ndarray]:
    model.eval()
    out = []
    with torch.no_grad():
        for clip in clips:
            out.append(kind.activate(model(torch.from_numpy(clip.frames[None]))[0]).numpy())
    return out


def evaluate_clips(kind: FrameKind, clips: list[Clip], activations: list[np.ndarray], *, rate_hz: float,
                   context: dict[str, object] | None = None, full: bool = True) -> dict[str, float]:
    """Decode every clip and score it against its labels (the kind's decoder and metrics); ``full=False``
    skips what the choice of a learning rate does not read (the beat task's tempo); ``context``: what the
    decoder learnt from the training labels (the beat task's tempo range)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mir_eval warns on empty estimates; they score 0
        decoded = [kind.decode(a, c.times_s, rate_hz=rate_hz, context=context, full=full)
                   for c, a in zip(clips, activations)]
        return kind.score([c.labels for c in clips], decoded)


def _flat(clips: list[Clip], *, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All frames of ``clips`` as one sequence ``(1, layers, frames, dim)`` with their targets ``(1, frames,
    ...)``; shuffled once when a ``seed`` is given."""
    x = np.concatenate([c.frames for c in clips], axis=1)
    y = np.concatenate([c.target for c in clips])
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(y))
        x, y = x[:, order], y[order]
    return torch.from_numpy(np.ascontiguousarray(x))[None], torch.from_numpy(np.ascontiguousarray(y))[None]


def _epoch_batches(splits: dict[str, list[Clip]], flat, head: str, rng: np.random.Generator, batch_clips: int):
    """One epoch of ``(x, y, mask)`` batches: whole clips for the temporal head, else slices of the
    once-shuffled frames in a random order (a per-frame head sees no context, so frames are
    independent samples and large slices train fast, without copying)."""
    if head == "tcn":
        yield from _batches(splits["train"], rng.permutation(len(splits["train"])), batch_clips)
        return
    x, y = flat
    starts = np.arange(0, x.shape[2], FRAME_BATCH)
    for start in rng.permutation(starts):
        yield x[:, :, start : start + FRAME_BATCH], y[:, start : start + FRAME_BATCH], None


def _train_one(kind: FrameKind, splits: dict[str, list[Clip]], *, config: FrameProbeConfig, rate: float, seed: int,
               pos_weight: torch.Tensor | None, outputs: int):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    first = splits["train"][0].frames
    model = FrameHead(layers=first.shape[0], dim=first.shape[2], outputs=outputs, head=config.head,
                      dropout=config.dropout)
    optimiser = torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=config.weight_decay)
    per_frame = config.head != "tcn"
    train_flat = _flat(splits["train"], seed=seed) if per_frame else None
    valid_flat = _flat(splits["valid"]) if per_frame else None
    valid_frames = sum(c.frames.shape[1] for c in splits["valid"])
    best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        for x, y, mask in _epoch_batches(splits, train_flat, config.head, rng, config.batch_clips):
            loss = frame_loss(kind, model(x), y, mask, pos_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            if per_frame:
                x, y = valid_flat
                valid_loss = float(frame_loss(kind, model(x), y, None, pos_weight))
            else:
                losses = [float(frame_loss(kind, model(x), y, mask, pos_weight)) * int(mask.sum()) for x, y, mask
                          in _batches(splits["valid"], np.arange(len(splits["valid"])), config.batch_clips)]
                valid_loss = sum(losses) / max(1, valid_frames)
        if valid_loss < best[0] - 1e-6:
            best = (valid_loss, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= config.patience:
            break
    model.load_state_dict(best[2])
    return model, best[1], best[0]


def _train_stacked(kind: FrameKind, splits: dict[str, list[Clip]], *, config: FrameProbeConfig,
                   copies: list[tuple[int, float]], pos_weight: torch.Tensor | None, outputs: int):
    """Per-frame heads for every ``(seed, learning rate)`` in ``copies``, trained in one pass: the same
    once-shuffled frame slices (in the first seed's order) feed every copy, each copy has its own seeded
    initialisation, learning rate, early stopping and best checkpoint. Returns ``[(head, best_epoch)]``."""
    first = splits["train"][0].frames
    stack = StackedFrameHeads(seeds=[seed for seed, _ in copies], layers=first.shape[0], dim=first.shape[2],
                              outputs=outputs, head=config.head, dropout=config.dropout)
    optimiser = torch.optim.AdamW([{"params": stack.copy_parameters(k), "lr": rate}
                                   for k, (_, rate) in enumerate(copies)], weight_decay=config.weight_decay)
    rng = np.random.default_rng(copies[0][0])
    train, valid = _flat(splits["train"], seed=copies[0][0]), _flat(splits["valid"])
    best = [(float("inf"), 0, copy.deepcopy(stack.head(k).state_dict())) for k in range(len(copies))]
    for epoch in range(1, config.max_epochs + 1):
        stack.train()
        for x, y, _ in _epoch_batches(splits, train, config.head, rng, config.batch_clips):
            loss = _stacked_loss(kind, stack(x), y[0], pos_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        stack.eval()
        with torch.no_grad():
            losses = _stacked_loss(kind, stack(valid[0]), valid[1][0], pos_weight, per_copy=True).tolist()
        for k, value in enumerate(losses):
            if value < best[k][0] - 1e-6:
                best[k] = (value, epoch, copy.deepcopy(stack.head(k).state_dict()))
        if all(epoch - b[1] >= config.patience for b in best):
            break
    heads = []
    for k, (_, epoch, state) in enumerate(best):
        head = stack.head(k)
        head.load_state_dict(state)
        heads.append((head.eval(), epoch))
    return heads


def fit_frame_probes(splits: dict[str, list[Clip]], *, kind: FrameKind, layers: list[int], config: FrameProbeConfig,
                     rate_hz: float, seeds: list[int]) -> list[tuple[ProbeResult, FrameHead, dict[str, np.ndarray]]]:
    """For each seed: train on ``splits["train"]``, choose the learning rate on ``valid``, score ``test``
    once. Returns per seed the result, the head and the standardisation (``mean``, ``scale`` of shape
    ``(layers, 1, dim)``) it expects. Per-frame heads of every seed and learning rate train together
    (:func:`_train_stacked`); the temporal head trains one at a time."""
    config.validate()
    started = time.perf_counter()
    train_frames = np.concatenate([c.frames for c in splits["train"]], axis=1)  # (layers, frames, dim)
    mean, scale = standardiser(train_frames.transpose(1, 0, 2))
    mean, scale = mean.transpose(1, 0, 2), scale.transpose(1, 0, 2)
    scaled = {s: [Clip(((c.frames - mean) / scale).astype(np.float32), c.times_s, c.target, c.labels, c.duration_s)
                  for c in clips] for s, clips in splits.items()}
    pos_weight = positive_weight(kind, [c.target for c in splits["train"]])
    copies = [(seed, rate) for seed in seeds for rate in config.learning_rates]
    context = kind.decode_context([c.labels for c in splits["train"]])
    if config.head == "tcn":
        trained = [_train_one(kind, scaled, config=config, rate=rate, seed=seed, pos_weight=pos_weight,
                              outputs=kind.outputs)[:2] for seed, rate in copies]
    else:
        trained = _train_stacked(kind, scaled, config=config, copies=copies, pos_weight=pos_weight,
                                 outputs=kind.outputs)
    train_s = (time.perf_counter() - started) / len(seeds)
    out = []
    for seed in seeds:
        best = None
        for (copy_seed, rate), (model, epoch) in zip(copies, trained):
            if copy_seed != seed:
                continue
            valid = evaluate_clips(kind, scaled["valid"], _activations(model, kind, scaled["valid"]), rate_hz=rate_hz,
                                   full=False)
            if best is None or valid[kind.headline] > best[0][kind.headline]:
                best = (valid, rate, epoch, model)
        _, rate, epoch, model = best
        valid = evaluate_clips(kind, scaled["valid"], _activations(model, kind, scaled["valid"]), rate_hz=rate_hz,
                               context=context)
        test = evaluate_clips(kind, scaled["test"], _activations(model, kind, scaled["test"]), rate_hz=rate_hz,
                              context=context)
        result = ProbeResult(layers=layers, seed=seed, model=config.head, learning_rate=rate, best_epoch=epoch,
                                  valid=valid, test=test, parameters=sum(p.numel() for p in model.parameters()),
                                  train_s=round(train_s, 2), layer_weights=model.layer_weights())
        out.append((result, model, {"mean": mean, "scale": scale}))
    return out


def fit_frame_probe(splits: dict[str, list[Clip]], *, kind: FrameKind, layers: list[int], config: FrameProbeConfig,
                    rate_hz: float) -> tuple[ProbeResult, FrameHead, dict[str, np.ndarray]]:
    """:func:`fit_frame_probes` for the one seed of ``config``."""
    return fit_frame_probes(splits, kind=kind, layers=layers, config=config, rate_hz=rate_hz, seeds=[config.seed])[0]


__all__ = ["Clip", "evaluate_clips", "fit_frame_probe",
           "fit_frame_probes", "frame_loss", "positive_weight"]
