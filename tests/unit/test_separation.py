"""The separation task and its booster model: stems that add up to the mix, the STFT round trip, masks
scored by SDR, untrained references, a boost run that trains, reports and separates new audio, and
the refusals (probes, tune, augmentation). The tiny rendered suite and a tiny encoder; CPU only."""

from __future__ import annotations

import numpy as np

from mirkit.boost import BoostConfig
from mirkit.data.stems import mix_stems

FAST = BoostConfig(fractions="1", steps=12, eval_every=6, batch_size=4, crop_s=2.0)


def test_stems_take_one_gain_so_that_they_add_up_to_the_mix():
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal(1000).astype(np.float32) * k for k in (0.1, 1.0, 0.5)]
    mix, stems = mix_stems(parts, peak=0.25, shape=lambda s: 2 * s)
    assert np.isclose(np.abs(mix).max(), 0.25) and np.allclose(mix, np.sum(stems, axis=0), atol=1e-6)
    ratios = [s / p for s, p in zip(stems, parts)]
    assert np.allclose(ratios[0], ratios[1][0]) and np.allclose(ratios[2], ratios[1][0])  # one gain for all


