"""Probes separate well-separated synthetic data, are seeded, and learn layer weights."""

from __future__ import annotations

import numpy as np
import pytest

from mirkit.adapt.config import ProbeConfig
from mirkit.adapt.fit import fit_probe
from mirkit.errors import ConfigError

FAST = ProbeConfig(max_epochs=40, patience=5, learning_rates=(1e-2,))


def _blobs(n: int, *, classes: int, dim: int, seed: int, spread: float = 0.5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, dim))
    y = rng.integers(0, classes, n)
    return (centres[y] + rng.normal(0, spread, (n, dim))).astype(np.float32), y


def _splits(x, labels):
    n = len(x)
    cut = [0, int(0.6 * n), int(0.8 * n), n]
    names = ("train", "valid", "test")
    return ({s: x[cut[i] : cut[i + 1]] for i, s in enumerate(names)},
            {s: labels[cut[i] : cut[i + 1]] for i, s in enumerate(names)})


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_multiclass_blobs_are_separated(model):
    x, y = _blobs(400, classes=4, dim=16, seed=0)
    features, labels = _splits(x, [f"class{v}" for v in y])
    result = fit_probe(features, labels, kind="multiclass", config=ProbeConfig(model=model, max_epochs=40, patience=5,
                                                                              learning_rates=(1e-2,)), layers=[3])
    assert result.test["accuracy"] > 0.95 and result.layers == [3]


def test_random_labels_stay_at_chance():
    x, _ = _blobs(400, classes=4, dim=16, seed=0)
    labels = list(np.random.default_rng(1).choice(["a", "b", "c", "d"], 400))
    features, split_labels = _splits(x, labels)
    assert fit_probe(features, split_labels, kind="multiclass", config=FAST, layers=[0]).test["accuracy"] < 0.45


def test_key_tagging_regression_and_tempo_kinds():
    x, y = _blobs(300, classes=3, dim=8, seed=2)
    keys = np.array(["C major", "A minor", "G major"])[y]
    features, labels = _splits(x, list(keys))
    assert fit_probe(features, labels, kind="key", config=FAST, layers=[0]).test["mirex_weighted"] > 0.9
    tags = [["drums"] + (["piano"] if v == 0 else []) + (["fast"] if v == 2 else []) for v in y]
    features, labels = _splits(x, tags)
    assert fit_probe(features, labels, kind="multilabel", config=FAST, layers=[0]).test["roc_auc"] > 0.95
    rng = np.random.default_rng(3)
    tempo_x = rng.normal(0, 1, (300, 8)).astype(np.float32)
    bpm = 2 ** (6.8 + 0.4 * tempo_x[:, 0] - 0.2 * tempo_x[:, 1] + rng.normal(0, 0.005, 300))  # log-linear in x
    features, labels = _splits(tempo_x, list(bpm))
    result = fit_probe(features, labels, kind="tempo", config=FAST, layers=[0])
    assert result.test["acc1"] > 0.8
    arousal_valence = np.stack([tempo_x[:, 2] - tempo_x[:, 3], 0.5 * tempo_x[:, 4]], axis=1) + rng.normal(0, 0.05, (300, 2))
    features, labels = _splits(tempo_x, list(arousal_valence))
    assert fit_probe(features, labels, kind="regression", config=FAST, layers=[0]).test["r2"] > 0.9


def test_same_seed_same_result_and_different_seed_differs():
    x, y = _blobs(300, classes=3, dim=8, seed=4, spread=2.5)
    features, labels = _splits(x, [str(v) for v in y])
    a = fit_probe(features, labels, kind="multiclass", config=ProbeConfig(seed=0, max_epochs=10), layers=[0])
    b = fit_probe(features, labels, kind="multiclass", config=ProbeConfig(seed=0, max_epochs=10), layers=[0])
    c = fit_probe(features, labels, kind="multiclass", config=ProbeConfig(seed=1, max_epochs=10), layers=[0])
    assert a.valid == b.valid and a.test == b.test and a.best_epoch == b.best_epoch
    assert (a.valid, a.best_epoch, a.learning_rate) != (c.valid, c.best_epoch, c.learning_rate) or a.test != c.test


def test_layer_weighting_prefers_the_informative_layer():
    x, y = _blobs(400, classes=4, dim=12, seed=5)
    noise = np.random.default_rng(6).normal(0, 3, (3,) + x.shape).astype(np.float32)
    stacked = np.stack([noise[0], noise[1], x, noise[2]], axis=1)  # layer 2 carries the classes
    features, labels = _splits(stacked, [str(v) for v in y])
    result = fit_probe(features, labels, kind="multiclass", config=ProbeConfig(max_epochs=60, patience=15),
                       layers=[0, 1, 2, 3])
    assert result.test["accuracy"] > 0.9
    assert int(np.argmax(result.layer_weights)) == 2 and abs(sum(result.layer_weights) - 1) < 1e-5


def test_probe_errors():
    x, y = _blobs(50, classes=2, dim=4, seed=0)
    features, labels = _splits(x, [str(v) for v in y])
    features["valid"] = features["valid"][:0]
    with pytest.raises(ConfigError, match="the valid split has no clips"):
        fit_probe(features, labels, kind="multiclass", config=FAST, layers=[0])
    with pytest.raises(ConfigError, match="model='svm'"):
        fit_probe(features, labels, kind="multiclass", config=ProbeConfig(model="svm"), layers=[0])


@pytest.mark.parametrize("kind", ["multiclass", "tempo"])
def test_saved_probe_reloads_and_reproduces_predictions(tmp_path, kind):
    from mirkit.adapt.probe import TrainedProbe

    x, y = _blobs(300, classes=3, dim=8, seed=7)
    labels = [str(v) for v in y] if kind == "multiclass" else list(2 ** (6.5 + 0.2 * x[:, 0]))
    features, split_labels = _splits(x, labels)
    kept: list[TrainedProbe] = []
    result = fit_probe(features, split_labels, kind=kind, config=FAST, layers=[2], keep=kept)
    probe = kept[0]
    outputs = probe.predict_outputs(features["test"])
    assert probe.targets.evaluate(split_labels["test"], outputs)["headline"] == pytest.approx(result.test["headline"])
    probe.save(tmp_path / "probe")
    loaded = TrainedProbe.load(tmp_path / "probe")
    np.testing.assert_allclose(loaded.predict_outputs(features["test"]), outputs, rtol=1e-5, atol=1e-5)
    assert loaded.predict(features["test"][:3]) == probe.predict(features["test"][:3]) and loaded.layers == [2]
    with pytest.raises(ConfigError, match="is not a saved probe"):
        TrainedProbe.load(tmp_path / "nothing")


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_batched_sweep_equals_probes_trained_one_by_one(model):
    """fit_probes trains jobs x seeds x rates as one stacked model; each must behave as if trained alone."""
    from mirkit.adapt.fit import ProbeJob, fit_probes

    x, y = _blobs(300, classes=3, dim=8, seed=3, spread=2.0)
    names = [str(v) for v in y]
    rng = np.random.default_rng(0)
    jobs = []
    for layer, noise in enumerate((0.5, 2.0, 4.0)):
        features, labels = _splits(x + rng.normal(0, noise, x.shape).astype(np.float32), names)
        jobs.append(ProbeJob(f"layer{layer}", [layer], features))
    # dropout draws its masks from one stream for the whole stack, so MLPs match exactly only without it
    config = ProbeConfig(model=model, max_epochs=25, patience=4, learning_rates=(1e-3, 1e-2), dropout=0.0)
    fits = fit_probes(jobs, labels, kind="multiclass", config=config, seeds=[0, 1])
    assert [(f.job, f.seed) for f in fits] == [(f"layer{j}", s) for j in range(3) for s in (0, 1)]
    for fit in fits:
        alone = fit_probe(jobs[fit.result.layers[0]].features, labels, kind="multiclass",
                          config=ProbeConfig(**{**config.__dict__, "seed": fit.seed}), layers=fit.result.layers)
        assert (alone.learning_rate, alone.best_epoch) == (fit.result.learning_rate, fit.result.best_epoch)
        assert alone.test["accuracy"] == pytest.approx(fit.result.test["accuracy"], abs=1e-9)
    # noisier layers score lower: the stacked models did not share their data
    means = [np.mean([f.result.test["accuracy"] for f in fits if f.job == f"layer{j}"]) for j in range(3)]
    assert means[0] > means[2]


@pytest.mark.parametrize("kind", ["multiclass", "key", "multilabel", "tempo", "regression"])
def test_vectorised_headline_equals_the_metric_modules(kind):
    from mirkit.adapt.targets import Targets

    rng = np.random.default_rng(1)
    n = 60
    if kind == "multiclass":
        labels = [f"c{v}" for v in rng.integers(0, 4, n)]
    elif kind == "key":
        labels = [f"{t} {m}" for t, m in zip(rng.choice(["C", "G", "A", "E"], n), rng.choice(["major", "minor"], n))]
    elif kind == "multilabel":
        labels = [[t for t in ("rock", "piano", "fast") if rng.random() < 0.4] for _ in range(n)]
    elif kind == "tempo":
        labels = list(rng.uniform(60, 180, n))
    else:
        labels = [list(v) for v in rng.normal(0, 1, (n, 2))]
    targets = Targets.fit(kind, labels)
    encoded = targets.encode(labels)
    outputs = rng.normal(0, 1, (5, n, targets.output_dim)).astype(np.float32)
    if kind in ("tempo", "regression"):
        outputs = encoded[None] + rng.normal(0, 0.05 if kind == "tempo" else 1, outputs.shape)
    outputs[0] = np.round(outputs[0], 1)  # ties in scores
    batch = targets.headline_batch(encoded, outputs)
    single = [targets.evaluate(labels, outputs[m])["headline"] for m in range(len(outputs))]
    np.testing.assert_allclose(batch, single, rtol=1e-6, atol=1e-9)
    assert len(set(np.round(single, 6))) > 1  # the cases differ, so equality is not trivial


def test_dead_training_features_and_diverging_rates_do_not_break_a_sweep():
    """A unit silent in training but active in test, and a learning rate that diverges, still give finite scores."""
    x, y = _blobs(300, classes=3, dim=8, seed=5)
    x[:180, 0] = 0.0  # the train rows (60%) never see feature 0 ...
    x[180:, 0] = 50.0  # ... which is large in valid and test
    bpm = list(2 ** (6.5 + 0.3 * (y - 1) + 0.01 * x[:, 1]))
    features, labels = _splits(x, bpm)
    result = fit_probe(features, labels, kind="tempo", layers=[0],
                       config=ProbeConfig(max_epochs=15, patience=3, learning_rates=(1e-2, 1e6)))
    assert np.isfinite(result.test["acc1"]) and result.learning_rate == 1e-2 and result.test["acc2"] > 0.5


def test_classes_absent_from_training_are_scored_not_refused():
    from mirkit.adapt.targets import Targets

    pitch = Targets.fit("multiclass", ["60", "62"], vocabulary=("60", "61", "62"))
    assert pitch.classes == ["60", "61", "62"] and list(pitch.encode(["61"])) == [1]
    key = Targets.fit("key", ["C major"])
    assert len(key.classes) == 24 and key.evaluate(["A minor"], np.eye(24)[[0]])["headline"] < 1
    with pytest.raises(ConfigError, match="do not occur in the training split"):
        Targets.fit("multiclass", ["60"]).encode(["61"])


def test_extreme_tag_logits_decode_to_probabilities_without_overflow():
    import warnings

    from mirkit.adapt.targets import Targets

    tags = Targets.fit("multilabel", [["rock"], ["jazz", "rock"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1 / (1 + exp(1000)) would warn about an overflow
        probabilities = np.stack(tags.decode(np.array([[-1000.0, 1000.0], [0.0, -50.0]])))
    assert np.array_equal(probabilities[0], [0.0, 1.0]) and probabilities[1, 0] == 0.5
    assert np.all((probabilities >= 0) & (probabilities <= 1))
