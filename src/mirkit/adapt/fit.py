"""Training probes: many (job, seed, learning rate) probes at once as one batched model.

A sweep of 13 layers x 3 seeds x 3 learning rates is 117 small models. Trained one by one, the time
goes to Python overhead, not arithmetic; here every model with inputs of one shape is a slice of
stacked weights, so one batched matrix product per step trains them all.

Each model still follows the protocol of :mod:`mirkit.adapt.probe` exactly as if trained alone:
its own seed (initialisation ``torch.manual_seed(seed)``, minibatch order from a generator seeded
with ``seed``), its own AdamW learning rate, its own early stopping (a model whose validation key
has not improved for ``patience`` epochs is finished: later epochs never replace its best
checkpoint) and its own best checkpoint. Training stops when every model is finished. Linear probes
come out as if trained one by one (tested); MLP dropout masks are drawn from one random stream for
the whole stack, so MLPs with dropout match their one-by-one twins in distribution, not bit for bit.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from mirkit.adapt.config import ProbeConfig
from mirkit.adapt.probe import ProbeHead, ProbeResult, TrainedProbe
from mirkit.adapt.targets import Targets
from mirkit.errors import ConfigError
from mirkit.kinds import ClipKind

SPLITS = ("train", "valid", "test")


@dataclass
class ProbeJob:
    """One probe input: features of one layer ``(clips, dim)`` or a layer stack ``(clips, layers, dim)``."""

    name: str
    layers: list[int]
    features: dict[str, np.ndarray]


@dataclass
class ProbeFit:
    job: str
    seed: int
    result: ProbeResult
    probe: TrainedProbe | None = None


def fit_probe(features: dict[str, np.ndarray], labels: dict[str, list[object]], *, kind: str, config: ProbeConfig,
              layers: list[int], keep: list[TrainedProbe] | None = None) -> ProbeResult:
    """Fit one probe (seed ``config.seed``) on one feature set; see :func:`fit_probes`."""
    fit = fit_probes([ProbeJob("probe", list(layers), features)], labels, kind=kind, config=config,
                     seeds=[config.seed], keep=keep is not None)[0]
    if keep is not None and fit.probe is not None:
        keep.append(fit.probe)
    return fit.result


def fit_probes(jobs: Sequence[ProbeJob], labels: dict[str, list[object]], *, kind: str, config: ProbeConfig,
               seeds: Sequence[int], keep: bool = False, progress: bool = False,
               desc: str = "probes", vocabulary: Sequence[str] = ()) -> list[ProbeFit]:
    """Fit every job with every seed (and every learning rate of ``config``), tested once at its best.

    Args:
        jobs: feature sets over the same clips (``labels`` applies to all).
        labels: per split, the raw labels (class names, tag lists, BPM values, ...).
        kind: the name of a clip-level task kind (:mod:`mirkit.kinds`).
        config: probe settings; ``config.seed`` is ignored in favour of ``seeds``.
        seeds: one probe per job and seed.
        keep: also return each fitted head as a :class:`TrainedProbe` (to save or apply).
        progress: show a progress bar over epochs (with the number of models still training).
        desc: the progress bar's label.

    Returns one :class:`ProbeFit` per (job, seed), jobs in order, seeds inner. ``train_s`` of each is
    its share of the wall time of its batched group.
    """
    config.validate()
    if not jobs or not seeds:
        raise ConfigError("fit_probes needs at least one job and one seed.")
    for job in jobs:
        for split in SPLITS:
            if split not in job.features or len(job.features[split]) == 0:
                raise ConfigError(f"the {split} split has no clips with features; a probe needs train, valid and test.")
            if len(job.features[split]) != len(labels[split]):
                raise ConfigError(f"job {job.name!r}: {len(job.features[split])} {split} feature rows but "
                                  f"{len(labels[split])} labels.")
    targets = Targets.fit(kind, labels["train"], vocabulary)
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(tuple(job.features["train"].shape[1:]), []).append(index)
    fits: dict[tuple[int, int], ProbeFit] = {}
    for members in groups.values():
        group = [jobs[i] for i in members]
        for (j, s), fit in _fit_group(group, labels, targets, config, list(seeds), keep, progress, desc).items():
            fits[(members[j], s)] = fit
    return [fits[(j, s)] for j in range(len(jobs)) for s in range(len(seeds))]


def _fit_group(jobs: list[ProbeJob], labels: dict[str, list[object]], targets: Targets, config: ProbeConfig,
               seeds: list[int], keep: bool, progress: bool, desc: str) -> dict[tuple[int, int], ProbeFit]:
    # Longer than most functions on purpose: the one batched optimisation over every (job, seed, rate)
    # model stays in one place so that the order of the updates (and so the results) is visible;
    # data preparation, early stopping and the choice of rate live in the helpers below.
    from tqdm.auto import tqdm

    started = time.perf_counter()
    kind, rates = targets.spec, list(config.learning_rates)
    n_jobs, n_seeds, n_rates = len(jobs), len(seeds), len(rates)
    groups, models = n_jobs * n_seeds, n_jobs * n_seeds * n_rates  # model m = ((job * seeds) + seed) * rates + rate
    regression = kind.standardise_targets

    stats, x, encoded, (y_mean, y_std), y_train, y_valid = _standardised(jobs, labels, targets)

    shape = jobs[0].features["train"].shape
    templates = []
    for seed in seeds:
        torch.manual_seed(seed)
        templates.append(ProbeHead(shape[-1], targets.output_dim, layers=shape[1] if len(shape) == 3 else 1,
                                   config=config))
    model = _Stacked(templates, n_jobs, n_rates, config)
    optimizer = torch.optim.AdamW([{"params": model.rate_params(r), "lr": lr} for r, lr in enumerate(rates)],
                                  weight_decay=config.weight_decay)
    best = _Best(model, models)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    n_train = len(y_train)
    # small training sets still get several steps per epoch, so patience measures learning
    batch_size = min(config.batch_size, max(16, n_train // 8))

    bar = tqdm(total=config.max_epochs, desc=desc, unit="epoch", disable=not progress or None, leave=False)
    for epoch in range(config.max_epochs):
        model.train()
        orders = [torch.randperm(n_train, generator=g) for g in generators]
        for start in range(0, n_train, batch_size):
            index = [order[start : start + batch_size] for order in orders]
            xb = torch.stack([x["train"][:, i] for i in index], dim=1).flatten(0, 1)  # (jobs * seeds, B, ...)
            yb = torch.stack([y_train[i] for i in index])  # (seeds, B, ...)
            out = model(xb).unflatten(0, (n_jobs, n_seeds))  # (jobs, seeds, rates, B, out)
            optimizer.zero_grad()
            task_losses(kind, out, yb[None, :, None]).sum().backward()
            optimizer.step()
        out = _evaluate(model, x["valid"], models)
        headline = torch.from_numpy(targets.headline_batch(encoded["valid"], _label_units(out, y_mean, y_std, regression)))
        headline = torch.round(headline, decimals=9)
        # a diverged model (non-finite loss) ranks below every finite one
        loss = torch.nan_to_num(task_losses(kind, out, y_valid[None]).double(), nan=np.inf, posinf=np.inf)
        best.update(model, epoch, headline, loss, patience=config.patience, groups=groups, n_rates=n_rates)
        bar.update(1)
        bar.set_postfix(training=f"{int((~best.done).sum())}/{models}")
        if best.done.all():
            break
    bar.close()
    best.restore(model)
    outputs = {split: _evaluate(model, x[split], models) for split in ("valid", "test")}
    elapsed = time.perf_counter() - started
    chosen = _chosen_rates(best.headline, best.loss, n_jobs=n_jobs, n_seeds=n_seeds, n_rates=n_rates)
    fits = {}
    for (j, s), m in chosen.items():
        job, seed = jobs[j], seeds[s]
        scores = {split: targets.evaluate(labels[split], _label_units(outputs[split][m : m + 1],
                                                                       y_mean, y_std, regression)[0])
                  for split in ("valid", "test")}
        head = model.head(m, templates[s])
        weights = head.layer_weights()
        result = ProbeResult(
            layers=list(job.layers), seed=seed, model=config.model, learning_rate=rates[m % n_rates],
            best_epoch=int(best.epoch[m]), valid=scores["valid"], test=scores["test"],
            parameters=sum(p.numel() for p in head.parameters()), train_s=round(elapsed / groups, 3),
            layer_weights=[] if weights is None else [float(w) for w in weights.detach()],
        )
        probe = None
        if keep:
            probe = TrainedProbe(head, targets, stats[j][0], stats[j][1], y_mean.numpy(), y_std.numpy(),
                                 replace(config, seed=seed), list(job.layers))
        fits[(j, s)] = ProbeFit(job.name, seed, result, probe)
    return fits


class _Best:
    """Early-stopping state of every model of a batched sweep: best validation headline and loss, the
    epoch they were reached, epochs without improvement, which models stopped, and their best weights."""

    def __init__(self, model: _Stacked, models: int) -> None:
        self.params = [p.detach().clone() for p in model.params]
        self.headline = torch.full((models,), -np.inf, dtype=torch.float64)
        self.loss = torch.full((models,), np.inf, dtype=torch.float64)
        self.epoch = torch.zeros(models, dtype=torch.long)
        self.stale = torch.zeros(models, dtype=torch.long)
        self.done = torch.zeros(models, dtype=torch.bool)

    def update(self, model: _Stacked, epoch: int, headline: torch.Tensor, loss: torch.Tensor, *, patience: int,
               groups: int, n_rates: int) -> None:
        """Models still training that improved (headline up, or equal with a lower loss) keep these weights."""
        improved = ~self.done & ((headline > self.headline) | ((headline == self.headline) & (loss < self.loss)))
        self.headline = torch.where(improved, headline, self.headline)
        self.loss = torch.where(improved, loss, self.loss)
        self.epoch[improved] = epoch
        self.stale = torch.where(improved, 0, self.stale + (~self.done).long())
        self.done |= self.stale >= patience
        by_rate = improved.view(groups, n_rates)
        for index, param in enumerate(model.params):
            mask = by_rate[:, index // model.per_rate]
            self.params[index][mask] = param.detach()[mask]

    def restore(self, model: _Stacked) -> None:
        with torch.no_grad():
            for param, best in zip(model.params, self.params):
                param.copy_(best)


def _standardised(jobs: list[ProbeJob], labels: dict[str, list[object]], targets: Targets):
    """Features standardised with each job's training statistics, ``(jobs, clips, ...)`` per split; encoded
    labels; the label standardisation (regression/tempo only: identity otherwise); training and validation
    targets in the head's units."""
    regression = targets.spec.standardise_targets
    stats = [standardiser(j.features["train"]) for j in jobs]  # training statistics only
    x = {split: torch.from_numpy(np.stack([((j.features[split] - m) / s).astype(np.float32)
                                           for j, (m, s) in zip(jobs, stats)])) for split in SPLITS}
    encoded = {split: targets.encode(labels[split]) for split in SPLITS}
    train_y = torch.from_numpy(encoded["train"])
    if regression:
        y_mean, y_std = train_y.mean(0, keepdim=True), train_y.std(0, keepdim=True) + 1e-6
    else:
        y_mean, y_std = torch.zeros(1), torch.ones(1)
    y_train = (train_y - y_mean) / y_std if regression else train_y
    y_valid = torch.from_numpy(encoded["valid"])
    y_valid = (y_valid - y_mean) / y_std if regression else y_valid
    return stats, x, encoded, (y_mean, y_std), y_train, y_valid


def _chosen_rates(best_headline: torch.Tensor, best_loss: torch.Tensor, *, n_jobs: int, n_seeds: int,
                  n_rates: int) -> dict[tuple[int, int], int]:
    """Per (job, seed), the model index of the learning rate with the best validation headline (validation
    loss breaks ties; the first rate wins exact ties, as in a sequential grid)."""
    chosen_by = {}
    for j in range(n_jobs):
        for s in range(n_seeds):
            candidates = [(j * n_seeds + s) * n_rates + r for r in range(n_rates)]
            chosen = candidates[0]
            for m in candidates[1:]:
                if (float(best_headline[m]), -float(best_loss[m])) > (float(best_headline[chosen]),
                                                                       -float(best_loss[chosen])):
                    chosen = m
            chosen_by[(j, s)] = chosen
    return chosen_by


def standardiser(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, scale)`` per feature (per layer for stacks) from training features.

    A feature (almost) constant in training, e.g. a ReLU unit that never fired, gets scale 1, as in
    scikit-learn's StandardScaler: dividing by its ~0 spread would turn any activity in valid/test
    clips into values of 1e6 and more.
    """
    mean = train.mean(axis=0, keepdims=True)
    std = train.std(axis=0, keepdims=True)
    return mean, np.where(std > 1e-6 * np.maximum(1.0, np.abs(mean)), std, 1.0).astype(train.dtype)


def task_losses(kind: ClipKind, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-model mean loss of ``kind`` (its ``loss``); ``out`` is ``(..., clips, out)`` and ``y`` broadcasts against it."""
    if kind.loss == "cross_entropy":
        y = y.expand(out.shape[:-1])
        return nn.functional.cross_entropy(out.flatten(0, -2), y.flatten(), reduction="none").view(y.shape).mean(-1)
    if kind.loss == "binary_cross_entropy":
        y = y.expand(out.shape)
        return nn.functional.binary_cross_entropy_with_logits(out, y, reduction="none").mean((-2, -1))
    return ((out - y) ** 2).mean((-2, -1))

def _evaluate(model: "_Stacked", x: torch.Tensor, models: int) -> torch.Tensor:
    """All models' outputs on one split: ``(models, clips, out)``."""
    model.eval()
    with torch.no_grad():
        out = model(x)  # (jobs, seeds * rates, clips, out)
    return out.reshape(models, *out.shape[2:])


def _label_units(out: torch.Tensor, y_mean: torch.Tensor, y_std: torch.Tensor, regression: bool) -> np.ndarray:
    return (out * y_std + y_mean).numpy() if regression else out.numpy()


class _Stacked(nn.Module):
    """``groups`` x ``rates`` copies of :class:`ProbeHead`, one parameter list per learning rate.

    Parameters per rate are stacked over groups (group ``g`` starts from ``templates[g % len(templates)]``,
    i.e. job-major, seed-minor). ``forward`` takes ``x`` as ``(G', B, [L,] dim)`` and views the
    parameters as ``(G', R', ...)`` with ``G' * R' = groups * rates``: in training ``G'`` is jobs x seeds;
    in evaluation ``G'`` is jobs, so every seed and rate of a job reads the same tensor.
    """

    def __init__(self, templates: list[ProbeHead], jobs: int, rates: int, config: ProbeConfig) -> None:
        super().__init__()
        self.mlp, self.dropout, self.rates = config.model == "mlp", config.dropout, rates
        self.weighted = templates[0].layer_logits is not None
        parts = [self._parts(head) for head in templates]
        self.per_rate = len(parts[0])
        self.params = nn.ParameterList()
        for _ in range(rates):
            for i in range(self.per_rate):
                self.params.append(nn.Parameter(torch.stack([p[i] for p in parts] * jobs)))

    def _linears(self, head: ProbeHead) -> list[nn.Linear]:
        return [head.net] if not self.mlp else [head.net[0], head.net[3]]  # type: ignore[list-item,index]

    def _parts(self, head: ProbeHead) -> list[torch.Tensor]:
        parts = []
        for layer in self._linears(head):
            parts += [layer.weight.detach().T.clone(), layer.bias.detach().clone()]
        if self.weighted:
            parts.append(head.layer_logits.detach().clone())  # type: ignore[union-attr]
        return parts

    def rate_params(self, r: int) -> list[nn.Parameter]:
        return list(self.params)[r * self.per_rate : (r + 1) * self.per_rate]

    def stacked(self, index: int, groups: int) -> torch.Tensor:
        """Parameter ``index`` of every rate viewed as ``(groups, models_per_group, ...)``."""
        t = torch.stack([self.params[r * self.per_rate + index] for r in range(self.rates)], dim=1)
        return t.reshape(groups, -1, *t.shape[2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = x.shape[0]
        w1, b1 = self.stacked(0, groups), self.stacked(1, groups)
        if self.weighted:
            mix = torch.softmax(self.stacked(self.per_rate - 1, groups), dim=-1)  # (G', R', layers)
            h = torch.einsum("grbd,grdk->grbk", torch.einsum("gbld,grl->grbd", x, mix), w1)
        else:
            h = torch.einsum("gbd,grdk->grbk", x, w1)
        h = h + b1[:, :, None]
        if self.mlp:
            h = nn.functional.dropout(torch.relu(h), self.dropout, self.training)
            h = torch.einsum("grbk,grko->grbo", h, self.stacked(2, groups)) + self.stacked(3, groups)[:, :, None]
        return h  # (G', R', B, out)

    def head(self, model: int, template: ProbeHead) -> ProbeHead:
        """Model ``model`` (group-major, rate-minor) as a standalone :class:`ProbeHead`."""
        head = copy.deepcopy(template)
        group, rate = divmod(model, self.rates)
        parts = [p[group].detach().clone() for p in self.rate_params(rate)]
        with torch.no_grad():
            for k, layer in enumerate(self._linears(head)):
                layer.weight.copy_(parts[2 * k].T)
                layer.bias.copy_(parts[2 * k + 1])
            if self.weighted:
                head.layer_logits.copy_(parts[-1])  # type: ignore[union-attr]
        return head
