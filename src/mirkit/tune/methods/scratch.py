"""``scratch``: the from-scratch baseline. A small CNN on a frozen log-mel or CQT front-end replaces
the encoder (``--encoder`` is not needed; results are named ``scratch-cnn-<input>``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mirkit.encoders import load_encoder
from mirkit.encoders.base import Encoder, seeded
from mirkit.encoders.spec import EncoderSpec, LayerSpec
from mirkit.errors import ConfigError
from mirkit.options import option
from mirkit.tune.methods.base import MethodConfig, MethodSpec, register_method


@dataclass(frozen=True)
class ScratchConfig(MethodConfig):
    scratch_input: str = option("logmel", "the CNN's handcrafted input", choices=("logmel", "cqt"))
    scratch_channels: int = option(32, "channels of the first conv block (doubling per block)")
    scratch_time_pool: str = option("auto", "pool time by 16 as well as frequency (yes: clip-level tasks) or keep "
                                    "the front-end's frame rate (no: beats, chords, notes); auto: by task",
                                    choices=("auto", "yes", "no"))

    def validate(self, method: str) -> None:
        super().validate(method)
        if self.scratch_channels < 1:
            raise ConfigError(f"scratch channels {self.scratch_channels} must be at least 1.")


class ScratchCNN(Encoder):
    """A frozen log-mel/CQT front-end (mirkit's handcrafted encoder) and four conv blocks (3x3 conv,
    batch norm, ReLU, 2x2 max-pool, or 2x1 without ``time_pool``: frequency only) trained from zero;
    output: one layer at the front-end's frame rate / 16 (or / 1)."""

    def __init__(self, frontend: Encoder, *, channels: int, seed: int, time_pool: bool = True) -> None:
        width = channels * 8
        self.time_factor = 16 if time_pool else 1
        rate = frontend.spec.layers[0].frame_rate_hz / self.time_factor
        spec = EncoderSpec(name=f"scratch-cnn-{frontend.spec.name}", family="scratch",
                           source=f"mirkit small CNN on {frontend.spec.name}", sample_rate=frontend.spec.sample_rate,
                           layers=(LayerSpec("cnn", width, rate),), licence="Apache-2.0", weights_kind="random",
                           builder="mirkit.tune.methods.scratch:ScratchCNN", min_duration_s=0.4)
        super().__init__(spec)
        self.frontend = frontend
        for p in frontend.parameters():
            p.requires_grad_(False)
        blocks: list[nn.Module] = [nn.BatchNorm2d(1)]  # the dB input has an arbitrary offset and scale
        c_in = 1
        with seeded(seed):
            for c_out in (channels, channels * 2, channels * 4, width):
                blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                           nn.MaxPool2d(2 if time_pool else (2, 1))]
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.weights_revision = f"random-seed{seed}"

    def encode(self, waveform, lengths):
        with torch.no_grad():
            out = self.frontend(waveform, lengths, layers=[0])
        x = out.hidden[0].transpose(1, 2)[:, None]  # (batch, 1, bins, frames)
        y = self.blocks(x).amax(dim=2).transpose(1, 2)  # max over frequency -> (batch, frames/factor, width)
        frames = (out.lengths[0] // self.time_factor).clamp(min=1, max=y.shape[1])
        return [y], [frames]


def build_encoder(config: ScratchConfig, *, seed: int, device: str = "cpu") -> ScratchCNN:
    return ScratchCNN(load_encoder(config.scratch_input, device=device), channels=config.scratch_channels, seed=seed,
                      time_pool=config.scratch_time_pool != "no")


def apply(encoder: nn.Module, config: ScratchConfig, state) -> None:
    for p in encoder.parameters():  # the handcrafted front-end has no parameters; frozen_modules keeps it so
        p.requires_grad_(True)


SPEC = register_method(MethodSpec(
    name="scratch", family="scratch", trains="a small CNN on a log-mel or CQT input, from random initialisation",
    applies_to="replaces the encoder (no --encoder needed)", learning_rate=1e-3, config_cls=ScratchConfig,
    apply=apply, trains_encoder=True, build_encoder=build_encoder,
    encoder_name=lambda config: f"scratch-cnn-{config.scratch_input}", layer="0", standardise_features=False,
    frozen_modules=("frontend",)))
