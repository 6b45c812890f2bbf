"""Suite-level tests moved from ``tests/unit/test_method_dora.py`` (they build the tiny suite): doRA (``mirkit.tune.methods.dora``), the method added as one file: it registers, appears on the"""

from __future__ import annotations

from dataclasses import replace

import torch

from mirkit.tune import (
    TuneConfig,
    get_method,
    load_tuned,
    tune_task,
)


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
