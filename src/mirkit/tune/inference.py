"""Running a tuned model on whole clips: evaluation windows, predictions in label units, and the
standardisation of features and regression labels fitted before training (used by the training loop
of :mod:`mirkit.tune.loop`, by ``mirkit predict`` and by ``mirkit robustness``)."""

from __future__ import annotations

import numpy as np
import torch

from mirkit.adapt.fit import standardiser
from mirkit.adapt.targets import Targets
from mirkit.errors import TrainingError
from mirkit.tune.data import ClipSet, eval_windows, pad_batch
from mirkit.tune.methods import MethodSpec, get_method
from mirkit.tune.model import TuneModel


def set_mode(model: TuneModel, training: bool, spec: MethodSpec) -> None:
    model.train(training)
    if not spec.trains_encoder:
        model.encoder.eval()


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def predict(model: TuneModel, clips: ClipSet, *, window_samples: int, min_samples: int, batch_size: int,
            device: torch.device, method: str) -> np.ndarray:
    """Raw outputs per clip (mean over its windows), in the head's units (standardised for regression)."""
    set_mode(model, False, get_method(method))
    pieces = [(i, w) for i, wave in enumerate(clips.waves)
              for w in eval_windows(wave, window_samples=window_samples, min_samples=min_samples)]
    pieces.sort(key=lambda p: len(p[1]))  # similar lengths share a batch: little padding
    sums: np.ndarray | None = None
    counts = np.zeros(len(clips.waves))
    with torch.no_grad(), autocast(device):
        for start in range(0, len(pieces), batch_size):
            chunk = pieces[start: start + batch_size]
            wave, lengths = pad_batch([w for _, w in chunk])
            out = model(wave.to(device), lengths.to(device)).float().cpu().numpy()
            if sums is None:
                sums = np.zeros((len(clips.waves), out.shape[1]))
            for (i, _), row in zip(chunk, out):
                sums[i] += row
                counts[i] += 1
    if sums is None:
        raise TrainingError(f"no clip of this split has a window of at least {min_samples} samples to predict on.")
    return (sums / counts[:, None]).astype(np.float32)


def fit_standardisation(model: TuneModel, clips: ClipSet, targets: Targets, *, window_samples: int, min_samples: int,
                        batch_size: int, device: torch.device, method: str) -> None:
    """Set the model's feature and label standardisation from the training clips (initial encoder)."""
    if targets.spec.standardise_targets:
        y = targets.encode(clips.labels)
        model.y_mean.copy_(torch.from_numpy(y.mean(axis=0)))
        model.y_std.copy_(torch.from_numpy(np.maximum(y.std(axis=0), 1e-6)))
    spec = get_method(method)
    if not spec.standardise_features:
        return
    set_mode(model, False, spec)
    pooled = []
    with torch.no_grad(), autocast(device):
        for wave in clips.waves:
            windows = eval_windows(wave, window_samples=window_samples, min_samples=min_samples)
            batch, lengths = pad_batch(windows)
            pooled.append(model.features(batch.to(device), lengths.to(device)).float().mean(0).cpu().numpy())
    mean, std = standardiser(np.stack(pooled))
    model.norm_mean.copy_(torch.from_numpy(mean[0]))
    model.norm_std.copy_(torch.from_numpy(std[0]))


def encode_targets(targets: Targets, labels: list[object], model: TuneModel) -> torch.Tensor:
    """``labels`` as training targets (regression labels standardised with the model's statistics)."""
    y = targets.encode(labels)
    if targets.spec.standardise_targets:
        y = (y - model.y_mean.cpu().numpy()) / model.y_std.cpu().numpy()
        return torch.from_numpy(y.astype(np.float32))
    return torch.from_numpy(y)


def label_units(outputs: np.ndarray, model: TuneModel, targets: Targets) -> np.ndarray:
    """Raw outputs back in label units (standardised targets, values and tempo, un-standardised)."""
    if targets.spec.standardise_targets:
        return outputs * model.y_std.cpu().numpy() + model.y_mean.cpu().numpy()
    return outputs


__all__ = ["autocast", "encode_targets", "fit_standardisation", "label_units", "predict", "set_mode"]
