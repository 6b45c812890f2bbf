"""Multi-teacher distillation for `mirkit pretrain --distill` (issue #33): teacher registry, targets
cached through the feature store and aligned to tokens, one logged loss per teacher, resumable."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from mirkit.errors import ConfigError
from mirkit.pretrain.config import PretrainConfig
from mirkit.pretrain.distill import (
    TEACHERS,
    TeacherSpec,
    TeacherTargets,
    cache_teachers,
    parse_distill,
    register_teacher,
)
from mirkit.pretrain.run import pretrain

TINY = PretrainConfig(preset="tiny", steps=4, batch_size=4, crop_s=2.0, checkpoint_every=2, stats_crops=8,
                      codebook_size=64, warmup_steps=2)


def test_teachers_are_permissive_and_the_option_is_checked():
    assert {"basic-pitch-note", "crepe", "musicnn-tags", "chroma"} <= set(TEACHERS)
    assert parse_distill("chroma, crepe=0.5") == {"chroma": 1.0, "crepe": 0.5}
    with pytest.raises(ConfigError, match="not a teacher"):
        parse_distill("madmom-beats=1")
    with pytest.raises(ConfigError, match="positive"):
        parse_distill("chroma=0")
    with pytest.raises(ConfigError, match="licence"):
        register_teacher(TeacherSpec("essentia-key", "chroma", 0, 12, "bce", "AGPL-3.0", "not allowed"))
    with pytest.raises(ConfigError, match="not a teacher"):
        replace(TINY, distill="nope").validate()


def test_targets_come_from_the_store_and_follow_the_crop(corpus, tmp_path):
    from mirkit.pretrain.data import CropDataset, read_corpus

    files = read_corpus(corpus)
    paths = [f.path for f in files]
    sources = cache_teachers(paths, names=["chroma"], store=tmp_path / "teachers", progress=False)
    again = cache_teachers(paths, names=["chroma"], store=tmp_path / "teachers", progress=False)  # all stored now
    assert again == sources
    targets = TeacherTargets(["chroma"], sources, tmp_path / "teachers")
    arrays, _ = targets._read(("chroma", None), sources[("chroma", None)][1][paths[0]])
    frames, times = arrays["frames_0"], arrays["times_0"]
    out, present = targets.crop(paths[0], start_s=1.0, tokens=25, token_rate_hz=25.0)
    assert out.shape == (25, 12) and present.all()
    centre = 1.0 + 7.5 / 25.0  # token 7's centre
    expected = frames[int(np.argmin(np.abs(times - centre)))]
    np.testing.assert_allclose(out[7], expected / expected.max(), rtol=1e-6)
    late, present = targets.crop(paths[0], start_s=5.5, tokens=25, token_rate_hz=25.0)  # the file ends at 6 s
    assert present[:12].all() and not present[-5:].any() and not late[-5:].any()
    dataset = CropDataset(files, sample_rate=16000, crop_s=2.0, seed=0, token_hop=640, tokens_per_crop=50, cqt=False,
                          teachers=targets)
    wave, length, _, distill, present = dataset[3]
    assert distill.shape == (50, 12) and present.shape == (50, 1) and bool(present[: length // 640].all())


@pytest.mark.weights
def test_pretraining_with_teachers_logs_each_loss_and_resumes_bit_for_bit(corpus, tmp_path):
    from safetensors.torch import load_file

    from mirkit.encoders.zoo import get_spec

    if not get_spec("basic-pitch").weights_available():
        pytest.skip("basic-pitch's wheel is not installed (pip install --no-deps basic-pitch==0.4.0)")
    config = replace(TINY, distill="chroma=1,basic-pitch-note=2", teacher_store=str(tmp_path / "teachers"))
    whole = pretrain(corpus=corpus, out_dir=tmp_path / "whole", config=config, progress=False, workers=0)
    assert whole is not None and whole.steps == 4
    history = [json.loads(line) for line in (tmp_path / "whole/history.jsonl").read_text().splitlines()]
    assert all(np.isfinite(h["distill_chroma"]) and np.isfinite(h["distill_basic-pitch-note"]) for h in history)
    assert pretrain(corpus=corpus, out_dir=tmp_path / "killed", config=config, progress=False, workers=0,
                    stop_after_steps=3) is None
    resumed = pretrain(corpus=corpus, out_dir=tmp_path / "killed", config=config, progress=False, workers=0)
    assert resumed is not None and resumed.resumed_from_step == 2
    a, b = (load_file(str(tmp_path / run / "final/model.safetensors")) for run in ("whole", "killed"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    info = json.loads((tmp_path / "whole/final/mirkit-encoder.json").read_text())
    assert "distilled from chroma=1,basic-pitch-note=2" in info["description"]
