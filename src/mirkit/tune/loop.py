"""The one training loop every method uses.

AdamW (head and method parameters as two groups with their own learning rates), linear warmup then
cosine decay, gradient clipping, gradient accumulation, bf16 autocast on CUDA, validation after
every epoch with early stopping on the headline metric (validation loss breaks ties), the best
weights kept and evaluated once on the test split. Checkpoints (``checkpoint.py``) hold everything
needed to continue bit for bit: resumed == uninterrupted on CPU (tested).

Frozen parts stay in eval mode (batch-norm statistics and dropout of a frozen encoder do not
change); ``finetune`` and ``scratch`` train the encoder in train mode.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mirkit.adapt.fit import standardiser, task_losses
from mirkit.adapt.targets import Targets
from mirkit.errors import CheckpointError, ConfigError, TrainingError
from mirkit.tune.checkpoint import load_checkpoint, rng_state, save_checkpoint, save_tensors, set_rng_state
from mirkit.tune.data import ClipSet, batches_per_epoch, eval_windows, pad_batch, train_batches
from mirkit.tune.methods import METHODS, MethodOptions
from mirkit.tune.model import TuneModel


@dataclass(frozen=True)
class TuneConfig:
    """Everything that defines a tuning run (stored with its checkpoints and results)."""

    method: str = "probe"
    options: MethodOptions = field(default_factory=MethodOptions)
    head: str = "linear"  # linear | mlp (the heads of `mirkit probe`)
    layer: str = "auto"  # auto | weighted | an index
    learning_rate: float | None = None  # encoder-side parameters; None: the method's default
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 16
    accumulate: int = 1
    max_epochs: int = 30
    patience: int = 5
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    crop_s: float = 5.0  # training crops; evaluation averages non-overlapping windows of this length
    seed: int = 0
    checkpoint_every: int = 50  # optimizer steps (a checkpoint is also written after every epoch)
    max_bad_steps: int = 5
    frame_rate_hz: float | None = None

    def validate(self) -> None:
        METHODS.get(self.method)
        checks = {"batch_size": self.batch_size >= 2, "accumulate": self.accumulate >= 1,
                  "max_epochs": self.max_epochs >= 1, "patience": self.patience >= 1, "crop_s": self.crop_s > 0,
                  "head_learning_rate": self.head_learning_rate > 0, "grad_clip": self.grad_clip > 0,
                  "warmup_ratio": 0 <= self.warmup_ratio < 1, "checkpoint_every": self.checkpoint_every >= 1,
                  "learning_rate": self.learning_rate is None or self.learning_rate > 0}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"tune settings out of range: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)} "
                              "(batch_size >= 2, accumulate/max_epochs/patience/checkpoint_every >= 1, "
                              "positive rates and crop, 0 <= warmup_ratio < 1).")
        if self.head not in ("linear", "mlp"):
            raise ConfigError(f"head={self.head!r} must be 'linear' or 'mlp'.")

    @property
    def encoder_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else METHODS.get(self.method).learning_rate

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Outcome:
    valid: dict[str, float]
    test: dict[str, float]
    best_epoch: int
    epochs: int
    steps: int
    skipped_steps: int
    step_s: float
    epoch_s: float
    train_s: float
    peak_memory_mib: float
    memory_kind: str
    history: list[dict[str, float]]
    resumed_from_step: int | None


def _trains_encoder(method: str) -> bool:
    return method in ("finetune", "scratch")


def saved_state(model: TuneModel, method: str) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint or a tuned run keeps: what trains, the head, the standardisation, and
    the encoder's buffers when the encoder trains (batch-norm statistics)."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    keep_encoder = _trains_encoder(method)
    return {n: t for n, t in model.state_dict().items()
            if n in trainable or not n.startswith("encoder.") or (keep_encoder and n.startswith("encoder."))
            if not (n.startswith("encoder.") and method == "scratch" and ".frontend." in n)}


def _set_mode(model: TuneModel, training: bool, method: str) -> None:
    model.train(training)
    if not _trains_encoder(method):
        model.encoder.eval()


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def predict(model: TuneModel, clips: ClipSet, *, window_samples: int, min_samples: int, batch_size: int,
            device: torch.device, method: str) -> np.ndarray:
    """Raw outputs per clip (mean over its windows), in the head's units (standardised for regression)."""
    _set_mode(model, False, method)
    pieces = [(i, w) for i, wave in enumerate(clips.waves)
              for w in eval_windows(wave, window_samples=window_samples, min_samples=min_samples)]
    pieces.sort(key=lambda p: len(p[1]))  # similar lengths share a batch: little padding
    sums: np.ndarray | None = None
    counts = np.zeros(len(clips.waves))
    with torch.no_grad(), _autocast(device):
        for start in range(0, len(pieces), batch_size):
            chunk = pieces[start: start + batch_size]
            wave, lengths = pad_batch([w for _, w in chunk])
            out = model(wave.to(device), lengths.to(device)).float().cpu().numpy()
            if sums is None:
                sums = np.zeros((len(clips.waves), out.shape[1]))
            for (i, _), row in zip(chunk, out):
                sums[i] += row
                counts[i] += 1
    assert sums is not None
    return (sums / counts[:, None]).astype(np.float32)


def fit_standardisation(model: TuneModel, clips: ClipSet, targets: Targets, *, window_samples: int, min_samples: int,
                        batch_size: int, device: torch.device, method: str) -> None:
    """Set the model's feature and label standardisation from the training clips (initial encoder)."""
    if targets.kind in ("regression", "tempo"):
        y = targets.encode(clips.labels)
        model.y_mean.copy_(torch.from_numpy(y.mean(axis=0)))
        model.y_std.copy_(torch.from_numpy(np.maximum(y.std(axis=0), 1e-6)))
    if method == "scratch":  # the CNN's features are random at start; its batch norms do this job
        return
    _set_mode(model, False, method)
    pooled = []
    with torch.no_grad(), _autocast(device):
        for wave in clips.waves:
            windows = eval_windows(wave, window_samples=window_samples, min_samples=min_samples)
            batch, lengths = pad_batch(windows)
            pooled.append(model.features(batch.to(device), lengths.to(device)).float().mean(0).cpu().numpy())
    mean, std = standardiser(np.stack(pooled))
    model.norm_mean.copy_(torch.from_numpy(mean[0]))
    model.norm_std.copy_(torch.from_numpy(std[0]))


def build_optimizer(model: TuneModel, config: TuneConfig) -> torch.optim.AdamW:
    """AdamW with the head at ``head_learning_rate`` and every other trainable weight at ``encoder_learning_rate``."""
    head = list(model.head.parameters())
    head_ids = {id(p) for p in head}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head, "lr": config.head_learning_rate}]
    if others:
        groups.append({"params": others, "lr": config.encoder_learning_rate})
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return f


def _encode_targets(targets: Targets, labels: list[object], model: TuneModel) -> torch.Tensor:
    y = targets.encode(labels)
    if targets.kind in ("regression", "tempo"):
        y = (y - model.y_mean.cpu().numpy()) / model.y_std.cpu().numpy()
        return torch.from_numpy(y.astype(np.float32))
    return torch.from_numpy(y)


def train(model: TuneModel, splits: dict[str, ClipSet], targets: Targets, *, config: TuneConfig, run_dir: Path,
          device: str = "cpu", resume: bool = False, progress: bool = True,
          stop_after_steps: int | None = None) -> Outcome | None:
    """Train ``model`` (the method already applied) and return its outcome; see the module docstring.

    ``stop_after_steps`` ends the run abruptly after that many optimizer steps and returns ``None``
    (how tests stand in for a killed process).
    """
    from tqdm import tqdm

    config.validate()
    dev = torch.device(device)
    model.to(dev)
    rate = model.encoder.spec.sample_rate
    crop = int(round(config.crop_s * rate))
    min_samples = max(1, int(math.ceil(model.encoder.spec.min_duration_s * rate)))
    ckpt_dir = run_dir / "checkpoints"
    kind = targets.kind
    y_train = None
    eval_args = dict(window_samples=crop, min_samples=min_samples, batch_size=config.batch_size, device=dev,
                     method=config.method)

    optimizer = build_optimizer(model, config)
    per_epoch = batches_per_epoch(splits["train"], config.batch_size)
    steps_per_epoch = -(-per_epoch // config.accumulate)
    total = config.max_epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(total, max(1, int(config.warmup_ratio * total))))

    state = {"epoch": 0, "batch": 0, "step": 0, "best": (-math.inf, math.inf), "best_epoch": -1, "bad_epochs": 0,
             "bad_steps": 0, "skipped_steps": 0, "history": [], "step_time": 0.0, "epoch_time": 0.0, "epochs_done": 0}
    resumed_from = None
    found = load_checkpoint(ckpt_dir) if resume else None
    if found is not None:
        tensors, trainer = found
        if trainer["config"] != config.to_dict():
            changed = sorted(k for k in config.to_dict() if trainer["config"].get(k) != config.to_dict()[k])
            raise CheckpointError(f"the checkpoint in {ckpt_dir} was made with other settings ({', '.join(changed)} "
                                  "differ); rerun with the same settings, or --resume never to start over.")
        missing = set(saved_state(model, config.method)) - set(tensors)
        if missing:
            raise CheckpointError(f"checkpoint in {ckpt_dir} lacks {sorted(missing)[:3]}; delete it to start over.")
        model.load_state_dict(tensors, strict=False)
        optimizer.load_state_dict(trainer["optimizer"])
        scheduler.load_state_dict(trainer["scheduler"])
        state = trainer["loop"]
        set_rng_state(trainer["rng"])
        resumed_from = state["step"]
    else:
        fit_standardisation(model, splits["train"], targets, **eval_args)
        torch.manual_seed(config.seed)
    y_train = _encode_targets(targets, splits["train"].labels, model)
    y_valid = _encode_targets(targets, splits["valid"].labels, model)

    def checkpoint() -> None:
        save_checkpoint(ckpt_dir, step=state["step"], tensors=saved_state(model, config.method),
                        trainer={"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                 "loop": state, "rng": rng_state(), "config": config.to_dict()})

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    started = time.perf_counter()
    bar = tqdm(total=config.max_epochs * per_epoch, initial=state["epoch"] * per_epoch + state["batch"],
               desc=f"tune {config.method}", unit="batch", disable=not progress or None)
    micro = 0
    while state["epoch"] < config.max_epochs and state["bad_epochs"] < config.patience:
        epoch_start = time.perf_counter()
        _set_mode(model, True, config.method)
        optimizer.zero_grad(set_to_none=True)
        for b, idx, wave, lengths in train_batches(splits["train"], batch_size=config.batch_size, crop_samples=crop,
                                                   seed=config.seed, epoch=state["epoch"], start=state["batch"]):
            step_start = time.perf_counter()
            try:
                with _autocast(dev):
                    out = model(wave.to(dev), lengths.to(dev)).float()
                loss = task_losses(kind, out, y_train[idx].to(dev)) / config.accumulate
                finite = bool(torch.isfinite(loss))
                if finite:
                    loss.backward()
            except torch.cuda.OutOfMemoryError:
                raise TrainingError(
                    f"out of GPU memory at batch size {config.batch_size} ({config.crop_s:g} s crops, method "
                    f"{config.method!r}); try --batch-size {max(2, config.batch_size // 2)} --accumulate "
                    f"{config.accumulate * 2} (same effective batch) or shorter --crop-s.") from None
            micro += 1
            last = b == per_epoch - 1
            if micro == config.accumulate or last:
                if finite:
                    norm = torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], config.grad_clip)
                    finite = bool(torch.isfinite(norm))
                if finite:
                    optimizer.step()
                    scheduler.step()
                    state["bad_steps"] = 0
                else:
                    state["skipped_steps"] += 1
                    state["bad_steps"] += 1
                    if state["bad_steps"] >= config.max_bad_steps:
                        raise TrainingError(
                            f"{state['bad_steps']} optimizer steps in a row had a non-finite loss or gradient "
                            f"(epoch {state['epoch']}, step {state['step']}); lower --lr "
                            f"(now {config.encoder_learning_rate:g}) / --head-lr, or check the audio for NaN.")
                optimizer.zero_grad(set_to_none=True)
                state["step"] += 1
                micro = 0
                state["batch"] = b + 1
                state["step_time"] += time.perf_counter() - step_start
                if state["step"] % config.checkpoint_every == 0 and not last:
                    checkpoint()
                if stop_after_steps is not None and state["step"] >= stop_after_steps:
                    bar.close()
                    return None
            bar.update(1)
        outputs = predict(model, splits["valid"], **eval_args)
        valid_loss = float(task_losses(kind, torch.from_numpy(outputs), y_valid))
        metric = targets.evaluate(splits["valid"].labels, _label_units(outputs, model, kind))["headline"]
        score = (metric, valid_loss if math.isfinite(valid_loss) else math.inf)
        state["history"].append({"epoch": state["epoch"], "valid_headline": metric, "valid_loss": valid_loss})
        if score[0] > state["best"][0] or (score[0] == state["best"][0] and score[1] < state["best"][1]):
            state["best"], state["best_epoch"], state["bad_epochs"] = score, state["epoch"], 0
            save_tensors(run_dir / "best.safetensors", saved_state(model, config.method))
        else:
            state["bad_epochs"] += 1
        state["epoch"] += 1
        state["batch"] = 0
        state["epochs_done"] += 1
        state["epoch_time"] += time.perf_counter() - epoch_start
        bar.set_postfix(valid=f"{metric:.3f}", best=f"{state['best'][0]:.3f}")
        checkpoint()
    bar.close()
    train_s = time.perf_counter() - started

    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(run_dir / "best.safetensors"), device=str(dev)), strict=False)
    results = {}
    for split in ("valid", "test"):
        outputs = predict(model, splits[split], **eval_args)
        results[split] = targets.evaluate(splits[split].labels, _label_units(outputs, model, kind))
    if dev.type == "cuda":
        peak, memory_kind = torch.cuda.max_memory_allocated(dev) / 2 ** 20, "GPU memory allocated (peak)"
    else:
        peak, memory_kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process RSS (peak)"
    epochs = max(1, state["epochs_done"])
    return Outcome(valid=results["valid"], test=results["test"], best_epoch=state["best_epoch"],
                   epochs=state["epoch"], steps=state["step"], skipped_steps=state["skipped_steps"],
                   step_s=state["step_time"] / max(1, state["step"]), epoch_s=state["epoch_time"] / epochs,
                   train_s=train_s, peak_memory_mib=round(peak, 1), memory_kind=memory_kind,
                   history=state["history"], resumed_from_step=resumed_from)


def _label_units(outputs: np.ndarray, model: TuneModel, kind: str) -> np.ndarray:
    if kind in ("regression", "tempo"):
        return outputs * model.y_std.cpu().numpy() + model.y_mean.cpu().numpy()
    return outputs
