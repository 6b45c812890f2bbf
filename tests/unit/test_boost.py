"""`mirkit boost`: boosted task models start exactly at their baselines, low-data subsets take whole
pieces, features align in time, a run trains three systems per cell, resumes, reports, and refuses
bad settings before training. Tiny encoder and the tiny rendered suite; CPU only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mirkit.boost import TASK_MODELS, BoostConfig
from mirkit.boost.data import BoostClip, align, training_subset
from mirkit.boost.models import build_task_model
from mirkit.errors import ConfigError

FAST = BoostConfig(fractions="0.5,1", steps=12, eval_every=6, batch_size=4, crop_s=2.0)


@pytest.mark.parametrize("fusion", ["concat", "film", "xattn"])
@pytest.mark.parametrize("model", ["beat-tcn", "onsets-frames", "open-unmix"])
def test_a_boosted_model_starts_exactly_at_its_baseline(model, fusion):
    spec = TASK_MODELS.get(model)
    outputs = {"beat-tcn": 2, "onsets-frames": 176, "open-unmix": 3 * 65}[model]
    bins = {"beat-tcn": 128, "onsets-frames": 84, "open-unmix": 65}[model]
    baseline = build_task_model(spec, bins=bins, outputs=outputs, seed=3).eval()
    boosted = build_task_model(spec, bins=bins, outputs=outputs, seed=3, inject_dims=[16, 8], fusion=fusion).eval()
    x = torch.randn(2, 50, bins)
    feats = [torch.randn(2, 50, 16), torch.randn(2, 50, 8)]
    mask = torch.ones(2, 50, dtype=torch.bool)
    assert torch.equal(baseline(x), boosted(x, feats, mask))
    # the zero gate gets a full gradient at once (not only after a scalar moved), and then the features count
    boosted.train()
    boosted(x, feats, mask).pow(2).mean().backward()
    assert boosted.fusion.gate.weight.grad.abs().sum() > 0 and boosted.fusion.gate_norm() == 0
    with torch.no_grad():
        boosted.fusion.gate.weight.normal_()
    assert not torch.allclose(baseline(x), boosted.eval()(x, feats, mask)) and boosted.fusion.gate_norm() > 0
    other = build_task_model(spec, bins=bins, outputs=outputs, seed=4).eval()
    assert not torch.equal(baseline(x), other(x))  # seeds do differ


def _clip(piece: str, k: int) -> BoostClip:
    return BoostClip(f"{piece}-{k}.flac", piece, np.zeros((3, 2)), np.arange(3) / 10, np.zeros((3, 2)), {}, 0.3)


def test_training_subsets_take_whole_pieces_and_depend_on_the_seed():
    clips = [_clip(f"p{p:02d}", k) for p in range(40) for k in range(3)]
    small = training_subset(clips, fraction=0.01, seed=0)
    assert len({c.piece for c in small}) == 1 and len(small) == 3  # at least one piece, all its clips
    tenth = training_subset(clips, fraction=0.1, seed=0)
    assert len({c.piece for c in tenth}) == 4 and len(tenth) == 12
    assert training_subset(clips, fraction=0.1, seed=0) == tenth
    assert {c.piece for c in training_subset(clips, fraction=0.1, seed=1)} != {c.piece for c in tenth}
    assert training_subset(clips, fraction=1, seed=5) == clips
    with pytest.raises(ConfigError, match="fraction 0 must be in"):
        training_subset(clips, fraction=0, seed=0)
    with pytest.raises(ConfigError, match="each must be in"):
        BoostConfig(fractions="0.1,2").validate()


def test_a_draw_that_leaves_a_tag_without_pieces_is_redrawn_to_cover_every_tag():
    from mirkit.adapt.targets import Targets

    tags = ["a", "b", "c", "rare"]
    targets = Targets.fit("multilabel", [tags])
    rare = {"p07", "p31"}  # two of 40 pieces carry the rare tag
    clips = [BoostClip(f"{p}-{k}.flac", p, np.zeros((3, 2)), np.arange(3) / 10,
                       targets.encode([["a", "b", "c", "rare"] if p in rare else ["a", "b", "c"]])[0], {}, 0.3)
             for p in (f"p{i:02d}" for i in range(40)) for k in range(2)]
    redrawn = 0
    for seed in range(8):
        plain = {c.piece for c in training_subset(clips, fraction=0.1, seed=seed)}
        pieces = {c.piece for c in training_subset(clips, fraction=0.1, seed=seed, targets=targets)}
        assert len(pieces) == 4 and pieces & rare  # the count is kept and the rare tag has a piece
        if plain & rare:
            assert pieces == plain  # a draw that covers every tag is kept as drawn
        else:
            redrawn += 1
            assert len(pieces & plain) >= 2  # the redraw follows the same random order
    assert redrawn > 0
    with pytest.raises(ConfigError, match="too few to give every class a training clip.*rare"):
        only = [BoostClip(c.path, c.piece, c.x, c.times_s, targets.encode([["rare"] if c.piece in rare else ["a"]])[0],
                          {}, 0.3) for c in clips]
        training_subset(only, fraction=0.01, seed=0, targets=targets)  # one piece cannot carry both a and rare


def test_features_are_interpolated_onto_the_task_frames():
    source = np.array([[0.0], [10.0], [20.0]])
    out = align(source, np.array([0.0, 0.1, 0.2]), np.array([0.0, 0.05, 0.15, 0.3]))
    assert np.allclose(out[:, 0], [0.0, 5.0, 15.0, 20.0])  # held at the end
    assert np.allclose(align(source[:1], np.array([0.0]), np.array([0.0, 1.0])), 0.0)


def test_feature_dropout_drops_injected_units_in_training_only_and_draws_nothing_when_off():
    from mirkit.boost.inject import Injector

    feats = [torch.ones(2, 40, 16), torch.ones(2, 40, 8)]
    torch.manual_seed(0)
    plain = Injector([16, 8])
    dropped = Injector([16, 8], feature_dropout=0.5)
    dropped.load_state_dict(plain.state_dict())
    assert torch.equal(plain.eval()(feats), dropped.eval()(feats))  # evaluation sees every unit
    state = torch.random.get_rng_state()
    plain.train()(feats)
    assert torch.equal(torch.random.get_rng_state(), state)  # off: no draw, so earlier runs replay exactly
    trained = dropped.train()(feats)
    assert not torch.equal(trained, plain(feats)) and not torch.equal(trained, dropped(feats))  # random per call
    # the boosted model with dropout still starts at its baseline (evaluation), and the setting is checked
    spec = TASK_MODELS.get("onsets-frames")
    baseline = build_task_model(spec, bins=84, outputs=176, seed=1).eval()
    boosted = build_task_model(spec, bins=84, outputs=176, seed=1, inject_dims=[16, 8], feature_dropout=0.3).eval()
    x = torch.randn(2, 40, 84)
    assert torch.equal(baseline(x), boosted(x, feats))
    with pytest.raises(ConfigError, match="feature_dropout=1.0"):
        BoostConfig(feature_dropout=1.0).validate()


def test_clip_level_models_start_at_their_baseline_too():
    spec = TASK_MODELS.get("short-chunk")
    baseline = build_task_model(spec, bins=128, outputs=5, seed=0).eval()
    for fusion in ("concat", "film", "xattn"):
        boosted = build_task_model(spec, bins=128, outputs=5, seed=0, inject_dims=[16], fusion=fusion,
                                   token_out=0.1).eval()
        x, feats = torch.randn(3, 20, 128), [torch.randn(3, 20, 16)]
        mask = torch.arange(20)[None] < torch.tensor([20, 15, 5])[:, None]
        assert torch.equal(baseline(x), boosted(x, feats, mask)) and baseline(x).shape == (3, 1, 5)


