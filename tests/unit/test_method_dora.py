"""DoRA (``mirkit.tune.methods.dora``), the method added as one file: it registers, appears on the
command line, trains exactly its peft parameters (magnitudes included), starts as the frozen
encoder and merges into the base weights."""

from __future__ import annotations

import re
from dataclasses import replace

import torch

from mirkit.cli.main import build_parser
from mirkit.encoders import load_encoder
from mirkit.tune import (
    METHODS,
    TuneConfig,
    apply_method,
    get_method,
    load_tuned,
    tune_task,
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


def test_a_dora_run_saves_only_its_tensors_and_merges(tiny_suite, tmp_path):
    from mirkit.tune.data import load_task_audio
    from mirkit.tune.inference import predict

    config = replace(TuneConfig(max_epochs=2, batch_size=4, crop_s=1.0), method="dora",
                     options=get_method("dora").config_cls(lora_rank=2))
    tune_task(task_dir=tiny_suite / "genre", encoder="tiny-test", out_dir=tmp_path, config=config, seeds=1,
              progress=False)
    model, _, _ = load_tuned(tmp_path, seed=0)
    magnitudes = [p for n, p in model.named_parameters() if "lora_magnitude_vector" in n]
    assert magnitudes and any(not torch.allclose(m, m.detach().clone().fill_(0)) for m in magnitudes)
    audio = load_task_audio(tiny_suite / "genre", label="genre", sample_rate=8000, min_duration_s=0.008, progress=False)
    args = dict(window_samples=8000, min_samples=64, batch_size=4, device=torch.device("cpu"), method="dora")
    out = predict(model, audio.splits["test"], **args)
    merged, _, _ = load_tuned(tmp_path, seed=0, merge=True)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(torch.from_numpy(predict(merged, audio.splits["test"], **args)), torch.from_numpy(out),
                               atol=1e-5, rtol=1e-4)
