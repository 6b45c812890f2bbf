"""DoRA (``mirkit.tune.methods.dora``), the method added as one file: it registers, appears on the
command line, trains exactly its peft parameters (magnitudes included), starts as the frozen
encoder and merges into the base weights."""

from __future__ import annotations

import re

import torch

from mirkit.cli.main import build_parser
from mirkit.encoders import load_encoder
from mirkit.tune import (
    METHODS,
    apply_method,
    get_method,
)


def test_dora_is_registered_with_the_lora_settings_and_is_mergeable():
    spec = get_method("dora")
    assert "dora" in METHODS and spec.mergeable and spec.config_cls is get_method("lora").config_cls
    args = build_parser().parse_args(["tune", "--method", "dora", "--lora-rank", "3", "--task", "t", "--out", "o"])
    assert args.method == "dora" and args.lora_rank == 3


def test_dora_trains_only_its_parameters_and_starts_as_the_frozen_encoder():
    enc = load_encoder("tiny-test")
    wave = torch.randn(2, 8000) * 0.1
    with torch.no_grad():
        plain = enc(wave).hidden[2]
    state = apply_method(enc, "dora", get_method("dora").config_cls(lora_rank=2))
    assert state.trained and all(re.search(r"lora_(A|B|magnitude_vector)", n) for n in state.trained)
    assert any("lora_magnitude_vector" in n for n in state.trained)  # DoRA, not plain LoRA
    with torch.no_grad():
        torch.testing.assert_close(enc(wave).hidden[2], plain, rtol=0, atol=1e-6)
    out = enc(wave).hidden[2].pow(2).mean()
    out.backward()
    assert all(p.grad is None for n, p in enc.named_parameters() if n not in state.trained)


