"""Suite-level tests moved from ``tests/unit/test_separation.py`` (they build the tiny suite): the separation task and its booster model: stems that add up to the mix, the STFT round trip, masks"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from mirkit.boost import BoostConfig, boost_task
from mirkit.boost.separation import estimates, ideal_masks, istft, load_separation, score_clips, stft
from mirkit.data.manifest import labels_for_copy, read_manifest
from mirkit.data.stems import STEMS
from mirkit.errors import ConfigError
from tests.unit.test_separation import FAST  # noqa: F401


def test_the_suite_renders_stems_that_sum_to_each_clip(tiny_suite):
    from mirkit.bench.runner import suite_tasks
    from mirkit.data.validate import validate_suite

    entries = read_manifest(tiny_suite / "separation" / "manifest.jsonl")
    assert {e.split for e in entries} == {"train", "valid", "test"}
    for entry in entries[:6]:
        mix, rate = sf.read(tiny_suite / "separation" / entry.path)
        stems = [sf.read(tiny_suite / "separation" / entry.labels["stems"][name])[0] for name in STEMS]
        assert rate == 22050 and all(len(s) == len(mix) for s in stems)
        residual = np.mean((mix - np.sum(stems, axis=0)) ** 2) / np.mean(mix**2)
        assert residual < 1e-4  # 16-bit rounding of four files
        assert all(np.mean(s**2) > 0 for s in stems[:2])  # every groove has drums and bass
    assert not [p for p in validate_suite(tiny_suite) if p.startswith("separation")]
    assert "separation" not in suite_tasks(tiny_suite)  # probes do not separate
    copied = labels_for_copy(entries[0].labels, tiny_suite / "separation")
    assert all(path.startswith("/") for path in copied["stems"].values())


def test_stft_round_trip_and_ideal_masks_score_well(tiny_suite):
    rng = np.random.default_rng(1)
    wave = rng.standard_normal(22050).astype(np.float32)
    assert np.allclose(istft(stft(wave), samples=wave.size), wave, atol=1e-4)
    data = load_separation(tiny_suite / "separation", only=("test",), progress=False)
    clips = data.splits["test"]
    assert data.bins == 513 and clips[0].target.shape == (len(clips[0].times_s), 4, 513)
    ideal = score_clips([c.path for c in clips], [c.labels for c in clips], [ideal_masks(c.target) for c in clips])
    flat = score_clips([c.path for c in clips], [c.labels for c in clips],
                       [np.full((len(c.times_s), 3 * 513), 1 / 3, dtype=np.float32) for c in clips])
    assert ideal["headline"] == ideal["sdr"] and ideal["sdr"] > flat["sdr"] + 5
    mix = sf.read(clips[0].path, dtype="float32")[0]
    keep_all = np.concatenate([np.ones((len(clips[0].times_s), 513)), np.zeros((len(clips[0].times_s), 2 * 513))], 1)
    assert np.allclose(estimates(keep_all, mix)[0], mix, atol=1e-4)


def test_a_separation_boost_run_trains_reports_and_separates_new_audio(tiny_suite, tmp_path):
    from mirkit.bench.boost_report import write_boost_report
    from mirkit.boost.predict import predict_boosted

    args = dict(task_dir=tiny_suite / "separation", model="open-unmix", encoder="tiny-test",
                store=tmp_path / "store", seeds=1, progress=False)
    summary = boost_task(out_dir=tmp_path / "run", config=FAST, **args)
    assert summary["metric"] == "sdr (dB)" and set(summary["systems"]) == {"baseline", "boosted", "twin"}
    result = json.loads((tmp_path / "run/results/boosted__f1__seed0.json").read_text())
    assert result["test"]["headline"] == result["test"]["sdr"] and {"sdr_drums", "si_sdr_bass"} <= set(result["test"])
    assert result["history"] and result["valid"]["headline"] == result["valid"]["sdr"]  # passes: SI-SDR; final: SDR
    references = summary["references"]
    assert references["hpss"]["cutoff_hz"] in (100, 200, 300, 400, 600, 800, 1200)
    assert references["ideal-ratio-masks"]["test"]["sdr"] > references["hpss"]["test"]["sdr"]
    md, _ = write_boost_report(tmp_path / "run")
    assert "References without training" in md.read_text()
    (tmp_path / "new").mkdir()
    clip = next(e for e in read_manifest(tiny_suite / "separation/manifest.jsonl") if e.split == "test")
    (tmp_path / "new" / "song.flac").write_bytes((tiny_suite / "separation" / clip.path).read_bytes())
    (tmp_path / "new" / "broken.wav").write_bytes(b"not audio")
    report, rows = predict_boosted(run_dir=tmp_path / "run", source=tmp_path / "new", store=tmp_path / "store",
                                   out_dir=tmp_path / "pred", progress=False)
    assert rows == 1 and report.num_skipped == 1
    mix = sf.read(tmp_path / "new" / "song.flac")[0]
    for name in STEMS:
        wave, rate = sf.read(tmp_path / "pred" / f"song.{name}.wav")
        assert rate == 22050 and len(wave) == len(mix)


def test_separation_refuses_what_does_not_apply(tiny_suite, tmp_path):
    from mirkit.adapt.config import ProbeRunConfig
    from mirkit.adapt.run import probe_task

    with pytest.raises(ConfigError, match="--model open-unmix"):
        probe_task(ProbeRunConfig(task_dir=tiny_suite / "separation", encoder="tiny-test", out_dir=tmp_path / "p",
                   store=tmp_path / "store", progress=False))
    with pytest.raises(ConfigError, match="stems would no longer add up"):
        boost_task(task_dir=tiny_suite / "separation", model="open-unmix", encoder="tiny-test",
                   out_dir=tmp_path / "run", store=tmp_path / "store", config=BoostConfig(augment="gain"),
                   progress=False)
    with pytest.raises(ConfigError, match="solves separation tasks"):
        boost_task(task_dir=tiny_suite / "beat", model="open-unmix", encoder="tiny-test", out_dir=tmp_path / "r2",
                   store=tmp_path / "store", config=FAST, progress=False)
