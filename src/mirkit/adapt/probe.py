"""Probes on frozen features (MARBLE protocol): linear or MLP (one 512-unit hidden layer, dropout),
on one layer or on a learned softmax-weighted sum of layers.

Protocol: standardise with training statistics; for each learning rate of a small grid train
with AdamW, evaluate on the validation split every epoch, stop after ``patience`` epochs without
improvement of (headline metric, then validation loss as the tie-break, so that a metric stuck at
0 early on, like tempo Acc1, does not end training), keep the best checkpoint; the learning rate with the best validation headline
metric is evaluated once on the test split. Everything is seeded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mirkit.adapt.config import ProbeConfig
from mirkit.adapt.targets import Targets
from mirkit.errors import ConfigError


@dataclass
class ProbeResult:
    """Outcome of one probe fit (one layer or layer set, one seed)."""

    layers: list[int]
    seed: int
    model: str
    learning_rate: float
    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float]
    parameters: int
    train_s: float
    layer_weights: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class ProbeHead(nn.Module):
    """Optional softmax layer weighting over ``(batch, layers, dim)`` inputs, then linear or MLP."""

    def __init__(self, dim: int, out: int, *, layers: int, config: ProbeConfig) -> None:
        super().__init__()
        self.layer_logits = nn.Parameter(torch.zeros(layers)) if layers > 1 else None
        if config.model == "linear":
            self.net: nn.Module = nn.Linear(dim, out)
        else:
            self.net = nn.Sequential(nn.Linear(dim, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
                                     nn.Linear(config.hidden, out))

    def layer_weights(self) -> torch.Tensor | None:
        return None if self.layer_logits is None else torch.softmax(self.layer_logits, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer_logits is not None:
            x = (x * self.layer_weights()[None, :, None]).sum(dim=1)
        elif x.ndim == 3:
            x = x[:, 0]
        return self.net(x)


@dataclass
class TrainedProbe:
    """A fitted head with everything needed to apply it to new features."""

    head: ProbeHead
    targets: Targets
    mean: np.ndarray
    std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    config: ProbeConfig
    layers: list[int]

    def predict_outputs(self, features: np.ndarray) -> np.ndarray:
        """Raw outputs (logits, or values in label units for regression/tempo) for ``(clips, dim)`` features."""
        x = ((features - self.mean) / self.std).astype(np.float32)
        self.head.eval()
        with torch.no_grad():
            out = self.head(torch.from_numpy(x)).numpy()
        return out * self.y_std + self.y_mean if self.targets.spec.standardise_targets else out

    def predict(self, features: np.ndarray) -> list[object]:
        return self.targets.decode(self.predict_outputs(features))

    def save(self, folder: str | Path) -> None:
        """``head.safetensors`` + ``probe.json`` (written atomically)."""
        import json

        from safetensors.torch import save

        from mirkit.files import atomic_write_bytes

        folder = Path(folder)
        tensors = {k: v.contiguous() for k, v in self.head.state_dict().items()}
        for name in ("mean", "std", "y_mean", "y_std"):
            tensors[f"stats.{name}"] = torch.from_numpy(np.ascontiguousarray(getattr(self, name), dtype=np.float32))
        atomic_write_bytes(folder / "head.safetensors", save(tensors))
        meta = {"kind": self.targets.kind, "classes": self.targets.classes, "dims": self.targets.dims,
                "layers": self.layers, "config": asdict(self.config), "format_version": 1}
        atomic_write_bytes(folder / "probe.json", json.dumps(meta, indent=2).encode())

    @classmethod
    def load(cls, folder: str | Path) -> "TrainedProbe":
        import json

        from safetensors.torch import load_file

        folder = Path(folder)
        try:
            meta = json.loads((folder / "probe.json").read_text())
            tensors = load_file(str(folder / "head.safetensors"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{folder} is not a saved probe (probe.json + head.safetensors): {exc}") from None
        config = ProbeConfig(**{**meta["config"], "learning_rates": tuple(meta["config"]["learning_rates"])})
        targets = Targets(meta["kind"], meta["classes"], meta["dims"])
        stats = {name: tensors.pop(f"stats.{name}").numpy() for name in ("mean", "std", "y_mean", "y_std")}
        n_layers = len(tensors["layer_logits"]) if "layer_logits" in tensors else 1
        dim = stats["mean"].shape[-1]
        head = ProbeHead(dim, targets.output_dim, layers=n_layers, config=config)
        head.load_state_dict(tensors)
        return cls(head, targets, stats["mean"], stats["std"], stats["y_mean"], stats["y_std"], config, meta["layers"])
