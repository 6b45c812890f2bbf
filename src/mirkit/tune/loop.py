"""The one training loop every method uses.

AdamW (head and method parameters as two groups with their own learning rates), linear warmup then
cosine decay, gradient clipping, gradient accumulation, bf16 autocast on CUDA, validation after
every epoch with early stopping on the headline metric (validation loss breaks ties), the best
weights kept and evaluated once on the test split. Checkpoints (``checkpoint.py``) hold everything
needed to continue bit for bit: resumed == uninterrupted on CPU (tested).

Frozen parts stay in eval mode (batch-norm statistics and dropout of a frozen encoder do not
change); methods whose spec says ``trains_encoder`` (finetune, scratch) train it in train mode.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mirkit.adapt.fit import task_losses
from mirkit.adapt.targets import Targets
from mirkit.audio.augment import changed_facets, parse_augment
from mirkit.data.label_rules import relabel
from mirkit.errors import CheckpointError, ConfigError, TrainingError
from mirkit.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    save_tensors,
    set_rng_state,
)
from mirkit.train.distributed import context
from mirkit.train.optim import clipped_step, warmup_cosine
from mirkit.tune.config import TuneConfig
from mirkit.tune.data import (
    ClipSet,
    batches_per_epoch,
    train_batches,
)
from mirkit.tune.inference import autocast, encode_targets, fit_standardisation, label_units, predict, set_mode
from mirkit.tune.methods import get_method
from mirkit.tune.model import TuneModel


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


@dataclass
class LoopState:
    """Where a run is and what it has seen; saved in every checkpoint (``to_dict``/``from_dict``)."""

    epoch: int = 0
    batch: int = 0  # next batch of the epoch
    step: int = 0  # optimizer steps taken
    best_metric: float = -math.inf  # validation headline of the best epoch
    best_loss: float = math.inf  # its validation loss (tie-break)
    best_epoch: int = -1
    bad_epochs: int = 0
    bad_steps: int = 0  # non-finite steps in a row
    skipped_steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    step_time: float = 0.0
    epoch_time: float = 0.0
    epochs_done: int = 0  # epochs run in this process and earlier ones (for the mean epoch time)

    def improves(self, metric: float, loss: float) -> bool:
        return metric > self.best_metric or (metric == self.best_metric and loss < self.best_loss)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> LoopState:
        raw = dict(raw)
        if "best" in raw:  # checkpoints written before LoopState kept (metric, loss) as one tuple
            raw["best_metric"], raw["best_loss"] = raw.pop("best")  # type: ignore[misc]
        return cls(**raw)  # type: ignore[arg-type]


def saved_state(model: TuneModel, method: str) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint or a tuned run keeps: what trains, the head, the standardisation, and
    the encoder's buffers when the encoder trains (batch-norm statistics), minus the method's frozen modules."""
    spec = get_method(method)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = tuple(f"encoder.{prefix}." for prefix in spec.frozen_modules)
    return {n: t for n, t in model.state_dict().items()
            if (n in trainable or not n.startswith("encoder.") or spec.trains_encoder) and not n.startswith(frozen)}


def build_optimizer(model: TuneModel, config: TuneConfig) -> torch.optim.AdamW:
    """AdamW with the head at ``head_learning_rate`` and every other trainable weight at ``encoder_learning_rate``."""
    head = list(model.head.parameters())
    head_ids = {id(p) for p in head}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head, "lr": config.head_learning_rate}]
    if others:
        groups.append({"params": others, "lr": config.encoder_learning_rate})
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


class Trainer:
    """One seed's run of the loop: explicit state (:class:`LoopState`) and named steps.

    ``start`` (restore a checkpoint or fit the standardisation), then per epoch ``train_epoch``
    (micro-batches, accumulation, optimizer steps, periodic checkpoints) and ``end_epoch``
    (validation, early stopping, best weights, checkpoint), then ``finish`` (best weights scored
    once on valid and test).
    """

    def __init__(self, model: TuneModel, splits: dict[str, ClipSet], targets: Targets, *, config: TuneConfig,
                 run_dir: Path, device: str = "cpu", label: str | None = None) -> None:
        config.validate()
        self.model, self.splits, self.targets, self.config, self.run_dir = model, splits, targets, config, run_dir
        self.label = label  # the label field (``key``, ``bpm``, ...): how labels follow label-changing augmentations
        self.augment = parse_augment(config.augment)
        self.spec = get_method(config.method)
        self.device = torch.device(device)
        model.to(self.device)
        self.dist = context(device)
        if config.batch_size < self.dist.world_size:
            raise ConfigError(f"--batch-size {config.batch_size} is smaller than the {self.dist.world_size} processes of "
                              f"this torchrun job; each needs a share of every batch (use --batch-size "
                              f"{self.dist.world_size} or more).")
        self.net = self.dist.wrap(model, self.device)  # what the training forward runs (DDP under torchrun)
        rate = model.encoder.spec.sample_rate
        self.crop = int(round(config.crop_s * rate))
        self.rate = rate
        min_samples = max(1, int(math.ceil(model.encoder.spec.min_duration_s * rate)))
        self.eval_args = dict(window_samples=self.crop, min_samples=min_samples, batch_size=config.batch_size,
                              device=self.device, method=config.method)
        self.ckpt_dir = run_dir / "checkpoints"
        self.optimizer = build_optimizer(model, config)
        self.per_epoch = batches_per_epoch(splits["train"], config.batch_size)
        total = config.max_epochs * -(-self.per_epoch // config.accumulate)
        self.scheduler = warmup_cosine(self.optimizer, total_steps=total, warmup_steps=int(config.warmup_ratio * total))
        self.state = LoopState()
        self.resumed_from: int | None = None
        self.y_train = self.y_valid = torch.empty(0)

    @property
    def done(self) -> bool:
        return self.state.epoch >= self.config.max_epochs or self.state.bad_epochs >= self.config.patience

    def start(self, *, resume: bool) -> None:
        """Continue from the latest checkpoint when ``resume`` finds one; else fit the standardisation and seed."""
        found = load_checkpoint(self.ckpt_dir) if resume else None
        if found is not None:
            self._restore(*found)
        else:
            self.fit_standardisation()
            torch.manual_seed(self.config.seed)
        self.prepare_targets()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    # The task-specific steps; :class:`mirkit.tune.timed.FrameTrainer` overrides them for time-resolved tasks.

    def fit_standardisation(self) -> None:
        fit_standardisation(self.model, self.splits["train"], self.targets, **self.eval_args)

    def prepare_targets(self) -> None:
        self.y_train = encode_targets(self.targets, self.splits["train"].labels, self.model)
        self.y_valid = encode_targets(self.targets, self.splits["valid"].labels, self.model)

    def batch_loss(self, idx: np.ndarray, offsets: np.ndarray, wave: torch.Tensor, lengths: torch.Tensor,
                   changes: list[dict[str, float]] | None = None) -> torch.Tensor:
        """The loss of one training batch (``offsets``: each crop's first sample in its clip; ``changes``:
        the label facets each crop's augmentations changed)."""
        with autocast(self.device):
            out = self.net(wave.to(self.device), lengths.to(self.device)).float()
        if changes and any(changes):
            labels = self.splits["train"].labels
            y = encode_targets(self.targets, [relabel(str(self.label), labels[i], c) if c else labels[i]
                                               for i, c in zip(idx, changes)], self.model)
        else:
            y = self.y_train[idx]
        return task_losses(self.targets.spec, out, y.to(self.device))

    def accept_change(self, index: int, changes: dict[str, float]) -> bool:
        """Whether training clip ``index`` may take these label changes (its new label is one of the classes)."""
        label = relabel(str(self.label), self.splits["train"].labels[index], changes)
        return not self.targets.spec.categorical or str(label) in self.targets.classes

    def score(self, split: str, *, with_loss: bool = False) -> tuple[float, dict[str, float]]:
        """``(loss, scores)`` of the model on a split (the loss is NaN unless ``with_loss``)."""
        outputs = predict(self.model, self.splits[split], **self.eval_args)
        loss = float(task_losses(self.targets.spec, torch.from_numpy(outputs), self.y_valid)) if with_loss else math.nan
        return loss, self.targets.evaluate(self.splits[split].labels, label_units(outputs, self.model, self.targets))

    def _restore(self, tensors: dict[str, torch.Tensor], trainer: dict[str, object]) -> None:
        config = self.config.to_dict()
        saved = type(self.config).from_dict(trainer["config"]).to_dict()  # type: ignore[arg-type]  # later settings: defaults
        if saved != config:
            changed = sorted(k for k in config if saved.get(k) != config[k])
            raise CheckpointError(f"the checkpoint in {self.ckpt_dir} was made with other settings ({', '.join(changed)} "
                                  "differ); rerun with the same settings, or --resume never to start over.")
        missing = set(saved_state(self.model, self.config.method)) - set(tensors)
        if missing:
            raise CheckpointError(f"checkpoint in {self.ckpt_dir} lacks {sorted(missing)[:3]}; delete it to start over.")
        self.model.load_state_dict(tensors, strict=False)
        self.optimizer.load_state_dict(trainer["optimizer"])  # type: ignore[arg-type]
        self.scheduler.load_state_dict(trainer["scheduler"])  # type: ignore[arg-type]
        self.state = LoopState.from_dict(trainer["loop"])  # type: ignore[arg-type]
        set_rng_state(trainer["rng"])  # type: ignore[arg-type]
        self.resumed_from = self.state.step

    def checkpoint(self) -> None:
        if not self.dist.is_main:  # one writer
            return
        save_checkpoint(self.ckpt_dir, step=self.state.step, tensors=saved_state(self.model, self.config.method),
                        trainer={"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                                 "loop": self.state.to_dict(), "rng": rng_state(), "config": self.config.to_dict()})

    def _backward(self, idx: np.ndarray, offsets: np.ndarray, wave: torch.Tensor, lengths: torch.Tensor,
                  changes: list[dict[str, float]]) -> bool:
        """Forward and backward of one micro-batch; ``False`` when its loss is not finite (no backward)."""
        config = self.config
        share = self.dist.share(len(idx))  # this process's rows of the global batch (all of it alone)
        try:
            loss = self.batch_loss(np.asarray(idx)[share], np.asarray(offsets)[share], wave[share], lengths[share],
                                   changes[share])
            loss = loss / config.accumulate
            finite = bool(torch.isfinite(loss))
            if finite:
                loss.backward()
            return finite
        except torch.cuda.OutOfMemoryError:
            raise TrainingError(
                f"out of GPU memory at batch size {config.batch_size} ({config.crop_s:g} s crops, method "
                f"{config.method!r}); try --batch-size {max(2, config.batch_size // 2)} --accumulate "
                f"{config.accumulate * 2} (same effective batch) or shorter --crop-s.") from None

    def _optimizer_step(self, finite: bool) -> None:
        """Clip and step (or skip and count a non-finite step; too many in a row abort the run)."""
        state, config = self.state, self.config
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if clipped_step(self.optimizer, self.scheduler, params, grad_clip=config.grad_clip, finite=finite):
            state.bad_steps = 0
        else:
            state.skipped_steps += 1
            state.bad_steps += 1
            if state.bad_steps >= config.max_bad_steps:
                raise TrainingError(
                    f"{state.bad_steps} optimizer steps in a row had a non-finite loss or gradient "
                    f"(epoch {state.epoch}, step {state.step}); lower --lr (now {config.encoder_learning_rate:g}) "
                    "/ --head-lr, or check the audio for NaN.")
        self.optimizer.zero_grad(set_to_none=True)
        state.step += 1

    def train_epoch(self, bar, *, stop_after_steps: int | None = None) -> bool:
        """The rest of the current epoch's batches; ``False`` when ``stop_after_steps`` ended the run."""
        state, config = self.state, self.config
        set_mode(self.model, True, self.spec)
        self.optimizer.zero_grad(set_to_none=True)
        micro, finite = 0, True
        accept = self.accept_change if changed_facets(self.augment) else None
        for b, idx, wave, lengths, offsets, changes in train_batches(
                self.splits["train"], batch_size=config.batch_size, crop_samples=self.crop, seed=config.seed,
                epoch=state.epoch, start=state.batch, augment=self.augment, sample_rate=self.rate, accept=accept,
                loudness=config.loudness):
            step_start = time.perf_counter()
            finite = self._backward(idx, offsets, wave, lengths, changes)
            micro += 1
            last = b == self.per_epoch - 1
            if micro == config.accumulate or last:
                self._optimizer_step(finite)
                micro = 0
                state.batch = b + 1
                state.step_time += time.perf_counter() - step_start
                if state.step % config.checkpoint_every == 0 and not last:
                    self.checkpoint()
                if stop_after_steps is not None and state.step >= stop_after_steps:
                    return False
            bar.update(1)
        return True

    def end_epoch(self, epoch_start: float) -> float:
        """Validate, keep the best weights, count bad epochs, checkpoint; returns the validation headline."""
        state = self.state
        valid_loss, scores = self.score("valid", with_loss=True)
        metric = scores["headline"]
        loss = valid_loss if math.isfinite(valid_loss) else math.inf
        state.history.append({"epoch": state.epoch, "valid_headline": metric, "valid_loss": valid_loss})
        if state.improves(metric, loss):
            state.best_metric, state.best_loss, state.best_epoch, state.bad_epochs = metric, loss, state.epoch, 0
            if self.dist.is_main:
                save_tensors(self.run_dir / "best.safetensors", saved_state(self.model, self.config.method))
            self.dist.barrier()  # the others load these weights at the end
        else:
            state.bad_epochs += 1
        state.epoch += 1
        state.batch = 0
        state.epochs_done += 1
        state.epoch_time += time.perf_counter() - epoch_start
        self.checkpoint()
        return metric

    def finish(self, train_s: float) -> Outcome:
        """Load the best weights and score them once on the validation and test splits."""
        from safetensors.torch import load_file

        state = self.state
        self.model.load_state_dict(load_file(str(self.run_dir / "best.safetensors"), device=str(self.device)),
                                   strict=False)
        results = {split: self.score(split)[1] for split in ("valid", "test")}
        if self.device.type == "cuda":
            peak, memory_kind = torch.cuda.max_memory_allocated(self.device) / 2 ** 20, "GPU memory allocated (peak)"
        else:
            peak, memory_kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process RSS (peak)"
        return Outcome(valid=results["valid"], test=results["test"], best_epoch=state.best_epoch,
                       epochs=state.epoch, steps=state.step, skipped_steps=state.skipped_steps,
                       step_s=state.step_time / max(1, state.step), epoch_s=state.epoch_time / max(1, state.epochs_done),
                       train_s=train_s, peak_memory_mib=round(peak, 1), memory_kind=memory_kind,
                       history=state.history, resumed_from_step=self.resumed_from)


def train(model: TuneModel, splits: dict[str, ClipSet], targets: Targets, *, config: TuneConfig, run_dir: Path,
          device: str = "cpu", resume: bool = False, progress: bool = True,
          stop_after_steps: int | None = None, trainer_cls: type[Trainer] = Trainer,
          label: str | None = None) -> Outcome | None:
    """Train ``model`` (the method already applied) and return its outcome; see the module docstring.

    ``stop_after_steps`` ends the run abruptly after that many optimizer steps and returns ``None``
    (how tests stand in for a killed process). ``label``: the task's label field, for label-changing
    augmentations (:mod:`mirkit.data.label_rules`).
    """
    from tqdm import tqdm

    trainer = trainer_cls(model, splits, targets, config=config, run_dir=run_dir, device=device, label=label)
    trainer.start(resume=resume)
    state, per_epoch = trainer.state, trainer.per_epoch
    started = time.perf_counter()
    with tqdm(total=config.max_epochs * per_epoch, initial=state.epoch * per_epoch + state.batch,
              desc=f"tune {config.method}", unit="batch",
              disable=not (progress and trainer.dist.is_main) or None) as bar:
        while not trainer.done:
            epoch_start = time.perf_counter()
            if not trainer.train_epoch(bar, stop_after_steps=stop_after_steps):
                return None
            metric = trainer.end_epoch(epoch_start)
            bar.set_postfix(valid=f"{metric:.3f}", best=f"{state.best_metric:.3f}")
    return trainer.finish(time.perf_counter() - started)
