"""Loudness policies: peak and BS.1770 gains, recipe ids, and extraction that no longer depends on level."""

from __future__ import annotations

import numpy as np
import pytest

from mirkit.audio.loudness import PEAK_DBFS, TARGET_LUFS, loudness_gain
from mirkit.errors import ConfigError
from mirkit.features import FeatureStore
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.recipe import FeatureRecipe
from tests.conftest import sine, write

RATE = 16000


def test_gains_reach_their_targets():
    import pyloudnorm

    quiet = 0.01 * sine(440, 2.0, RATE)
    peak = loudness_gain(quiet, sample_rate=RATE, policy="peak")
    assert np.max(np.abs(quiet * peak)) == pytest.approx(10 ** (PEAK_DBFS / 20), rel=1e-6)
    gain = loudness_gain(quiet, sample_rate=RATE, policy="lufs")
    assert pyloudnorm.Meter(RATE).integrated_loudness(quiet * gain) == pytest.approx(TARGET_LUFS, abs=0.1)
    clicks = np.zeros(2 * RATE, dtype=np.float32)
    clicks[::4000] = 0.001  # very quiet but all peak: reaching -23 LUFS would clip, so the peak limit wins
    assert np.max(np.abs(clicks * loudness_gain(clicks, sample_rate=RATE, policy="lufs"))) <= 10 ** (PEAK_DBFS / 20) + 1e-6
    assert loudness_gain(np.zeros(RATE, dtype=np.float32), sample_rate=RATE, policy="lufs") == 1.0  # silence
    assert loudness_gain(quiet[: RATE // 10], sample_rate=RATE, policy="lufs") == 1.0  # shorter than a BS.1770 block
    assert loudness_gain(quiet, sample_rate=RATE, policy="none") == 1.0
    with pytest.raises(ConfigError, match="loudness='loud'"):
        loudness_gain(quiet, sample_rate=RATE, policy="loud")


def test_recipes_without_a_policy_keep_their_ids():
    fields = dict(encoder="tiny-test", weights_revision="seed0", sample_rate=8000, window_s=5.0, hop_s=5.0,
                  min_duration_s=0.1, batching="pad-zero", layers=(0, 1))
    plain = FeatureRecipe(**fields)
    assert "loudness" not in plain.to_dict() and FeatureRecipe(**fields, loudness=None).recipe_id == plain.recipe_id
    assert FeatureRecipe(**fields, loudness="peak").recipe_id != plain.recipe_id
    with pytest.raises(ConfigError, match="loudness"):
        FeatureRecipe(**fields, loudness="rms")
    with pytest.raises(ConfigError, match="--loudness"):
        ExtractConfig(encoder="tiny-test", loudness="rms").validate()


@pytest.mark.parametrize("policy", ["peak", "lufs"])
def test_a_policy_makes_features_independent_of_level(tmp_path, policy):
    tone = sine(330, 1.5, 8000) + 0.3 * sine(990, 1.5, 8000)
    write(tmp_path / "audio" / "loud.wav", 0.8 * tone / np.max(np.abs(tone)), 8000, subtype="FLOAT")
    write(tmp_path / "audio" / "quiet.wav", 0.02 * tone / np.max(np.abs(tone)), 8000, subtype="FLOAT")

    def pooled(loudness: str) -> list[np.ndarray]:
        report = extract(tmp_path / "audio", store=tmp_path / "store", progress=False,
                         config=ExtractConfig(encoder="tiny-test", num_workers=0, loudness=loudness))
        items = FeatureStore(tmp_path / "store").recipe(report.recipe)
        return [items.read(report.item_ids[str(tmp_path / "audio" / f"{n}.wav")])[0]["pooled_0"] for n in ("loud", "quiet")]

    loud, quiet = pooled(policy)
    assert np.allclose(loud, quiet, atol=1e-4)
    loud, quiet = pooled("none")
    assert not np.allclose(loud, quiet, atol=1e-2)
