"""Task models that stand on their own (the baselines) and take injected features (the boosted models).

Each model reads a handcrafted input from the feature store (its ``input_encoder``: log-mel or CQT
frames at 43 fps), turns it into hidden frames ``h`` with a convolutional front end, fuses the
injected features there (the named fusion point; :mod:`mirkit.boost.inject`) and maps ``h`` to
frame logits with its back end:

- ``onsets-frames`` (transcription): Onsets-and-Frames / basic-pitch lite on CQT: three 3x3 conv
  blocks, frequency pooling, a 256-unit frame embedding; fusion there (SoniDo: features beside the
  spectrogram, then a shallow layer); back end one temporal convolution to 88 frame + 88 onset outputs.
- ``beat-tcn`` (beat): a TCN beat and downbeat tracker on log-mel (Davies & Böck 2019 lite): two
  conv blocks pooling frequency, a 64-unit frame embedding; fusion there; back end six dilated
  residual temporal convolutions (dilations 1-32) to beat and downbeat outputs.
- ``short-chunk`` (tagging): a short-chunk CNN on log-mel (Won et al. 2020 lite) for ~3.7 s chunks:
  five 3x3 conv blocks pooling time and frequency, a global max, a 256-unit clip embedding; the
  injected frames are aggregated by attention (SoniDo) and fused into that embedding (or attended to
  from it, ``xattn``); back end dropout and a linear layer to the tags. Token-out 0.1 by default.
- ``open-unmix`` (separation): Open-Unmix lite (Stöter et al. 2019) on the mix's log-magnitude STFT
  (:mod:`mirkit.boost.separation`): a linear encoder with batch norm and tanh to 128 units (the
  fusion point: SoniDo injects into Open-Unmix's encoder), a 2-layer bidirectional LSTM whose output
  is concatenated with its input, a decoder to a sigmoid mask per stem and bin.

A boosted model draws its task-model weights exactly as the baseline of the same seed does (the
injection modules draw from a separate generator), and its gates start at zero, so at step 0 the
two compute the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mirkit.boost.inject import AttentionPool, Fusion, Injector
from mirkit.registry import Registry


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 5, padding=2 * dilation, dilation=dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(nn.functional.elu(self.conv(x)))


def _conv_block(c_in: int, c_out: int, pool: int, time_pool: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d((time_pool, pool))]


class TaskModel(nn.Module):
    """``forward(x, feats, mask)``: input frames ``x (batch, frames, bins)``, injected layers ``feats``
    (``[(batch, frames, dim_l)]``, or ``None`` for the baseline) -> logits ``(batch, frames, outputs)``."""

    width: int
    clip_level = False  # True: one output per input (logits (batch, 1, outputs)), the injected frames aggregated

    def __init__(self) -> None:
        super().__init__()
        self.injector: Injector | None = None
        self.fusion: Fusion | None = None
        self.pool: AttentionPool | None = None

    def add_injection(self, dims: list[int], *, fusion: str, token_out: float = 0.0,
                      feature_dropout: float = 0.0) -> None:
        self.injector = Injector(dims, token_out=token_out, feature_dropout=feature_dropout)
        self.fusion = Fusion(fusion, width=self.width)
        if self.clip_level and fusion != "xattn":
            self.pool = AttentionPool()

    def front(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def back(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, feats: list[torch.Tensor] | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.front(x)
        if self.injector is not None and self.fusion is not None:
            if feats is None:
                raise ValueError("a boosted model needs the injected features")
            tokens = self.injector(feats)
            h = self.fusion(h, tokens if self.pool is None else self.pool(tokens, mask), mask)
        return self.back(h)


class OnsetsFramesLite(TaskModel):
    width = 256

    def __init__(self, *, bins: int, outputs: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*_conv_block(1, 16, 1), *_conv_block(16, 16, 2), *_conv_block(16, 32, 2))
        self.embed = nn.Linear(32 * (bins // 4), self.width)
        self.head = nn.Conv1d(self.width, outputs, 3, padding=1)

    def front(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs(x[:, None])  # (batch, 32, frames, bins / 4)
        return torch.relu(self.embed(y.permute(0, 2, 1, 3).flatten(2)))

    def back(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h.transpose(1, 2)).transpose(1, 2)


class BeatTCN(TaskModel):
    width = 64

    def __init__(self, *, bins: int, outputs: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.convs = nn.Sequential(*_conv_block(1, 16, 4), *_conv_block(16, 16, 4))
        self.embed = nn.Linear(16 * (bins // 16), self.width)
        self.blocks = nn.Sequential(*(_Residual(self.width, d, dropout) for d in (1, 2, 4, 8, 16, 32)))
        self.head = nn.Conv1d(self.width, outputs, 1)

    def front(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs(x[:, None])
        return nn.functional.elu(self.embed(y.permute(0, 2, 1, 3).flatten(2)))

    def back(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(h.transpose(1, 2))).transpose(1, 2)


class ShortChunkCNN(TaskModel):
    width = 256
    clip_level = True

    def __init__(self, *, bins: int, outputs: int, dropout: float = 0.3) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for c_in, c_out in ((1, 32), (32, 32), (32, 64), (64, 64), (64, 128)):
            blocks += _conv_block(c_in, c_out, 2, time_pool=2)
        self.convs = nn.Sequential(*blocks)
        self.embed = nn.Linear(128, self.width)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.width, outputs))

    def front(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] < 32:  # five 2x poolings of time need 32 frames: pad a shorter chunk with zeros
            x = nn.functional.pad(x, (0, 0, 0, 32 - x.shape[1]))
        y = self.convs(x[:, None]).amax(dim=(2, 3))  # global max over time and frequency
        return torch.relu(self.embed(y))[:, None]

    def back(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)


class OpenUnmixLite(TaskModel):
    width = 128

    def __init__(self, *, bins: int, outputs: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.encode = nn.Linear(bins, self.width, bias=False)
        self.encode_norm = nn.BatchNorm1d(self.width)
        self.lstm = nn.LSTM(self.width, self.width // 2, num_layers=2, bidirectional=True, batch_first=True,
                            dropout=dropout)
        self.decode = nn.Linear(2 * self.width, self.width, bias=False)
        self.decode_norm = nn.BatchNorm1d(self.width)
        self.head = nn.Linear(self.width, outputs)

    def front(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encode_norm(self.encode(x).transpose(1, 2)).transpose(1, 2))

    def back(self, h: torch.Tensor) -> torch.Tensor:
        recurrent, _ = self.lstm(h)
        z = self.decode(torch.cat([h, recurrent], dim=-1))  # Open-Unmix's skip connection around the LSTM
        return self.head(torch.relu(self.decode_norm(z.transpose(1, 2)).transpose(1, 2)))


@dataclass(frozen=True)
class TaskModelSpec:
    """A task model of ``mirkit boost``.

    Attributes:
        name: registry key (``--model``).
        kind: the task kind it solves.
        input_encoder: the handcrafted zoo encoder whose frames are its input.
        description: one line for listings and reports.
        builder: ``builder(bins=..., outputs=...)`` -> :class:`TaskModel`.
        token_out: the default probability of dropping an injected frame in training.
        min_crop_s: the shortest training crop it takes (its pooling needs that many frames).
    """

    name: str
    kind: str
    input_encoder: str
    description: str
    builder: Callable[..., TaskModel]
    token_out: float = 0.0
    min_crop_s: float = 0.0


TASK_MODELS: Registry[TaskModelSpec] = Registry("task model", listing_hint="mirkit boost --list-models")
for _spec in (
    TaskModelSpec("onsets-frames", "transcription", "cqt", "Onsets-and-Frames lite on CQT: conv front end, "
                  "256-unit frame embedding (fusion point), temporal conv to 88 frames + 88 onsets", OnsetsFramesLite),
    TaskModelSpec("beat-tcn", "beat", "logmel", "TCN beat/downbeat tracker on log-mel: conv front end, 64-unit frame "
                  "embedding (fusion point), 6 dilated residual temporal convs", BeatTCN),
    TaskModelSpec("short-chunk", "multilabel", "logmel", "short-chunk CNN on log-mel chunks: 5 conv blocks, global "
                  "max, 256-unit clip embedding (fusion point; injected frames aggregated by attention)",
                  ShortChunkCNN, token_out=0.1, min_crop_s=0.75),
    TaskModelSpec("open-unmix", "separation", "stft", "Open-Unmix lite on the mix's log-magnitude STFT: linear "
                  "encoder to 128 units (fusion point), 2-layer BLSTM with a skip, decoder to a sigmoid mask per stem "
                  "and bin", OpenUnmixLite),
):
    TASK_MODELS.register(_spec.name, _spec)


def build_task_model(spec: TaskModelSpec, *, bins: int, outputs: int, seed: int, inject_dims: list[int] | None = None,
                     fusion: str = "concat", token_out: float = 0.0, feature_dropout: float = 0.0) -> TaskModel:
    """The task model of ``seed``; with ``inject_dims`` also its injection modules, drawn from a separate
    generator so that the task-model weights equal the baseline's of the same seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = spec.builder(bins=bins, outputs=outputs)
        if inject_dims is not None:
            torch.manual_seed(seed + 1_000_003)
            model.add_injection(inject_dims, fusion=fusion, token_out=token_out, feature_dropout=feature_dropout)
    return model


__all__ = ["TASK_MODELS", "TaskModel", "TaskModelSpec", "build_task_model"]
