"""`mirkit extract --engine ray` on a local Ray instance (2 CPUs): the same items as the local engine
(exactly equal arrays), stored items reused, bad files recorded as locally, bad cluster settings refused."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore

ray = pytest.importorskip("ray", reason="the Ray engine's tests need `pip install 'mirkit[ray]'` (setup.sh installs it)")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray-audio")
    t = np.arange(int(1.5 * 16000)) / 16000
    for i in range(6):
        sf.write(folder / f"tone{i}.wav", (0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t)).astype(np.float32), 16000)
    (folder / "broken.wav").write_bytes(b"RIFF not really")
    return folder


def test_ray_engine_stores_exactly_the_local_items_reuses_them_and_records_bad_files(local_ray, audio, tmp_path):
    from mirkit.features.ray_engine import extract_ray

    # one window per forward pass in both engines: the same computations, so the arrays are equal bit for bit
    # (with several files per batch the local engine batches across files, and GEMM blocking differs in float)
    config = ExtractConfig(encoder="tiny-test", layers="all", batch_size=1)
    local = extract(audio, store=tmp_path / "local", config=config, progress=False)
    remote = extract_ray(audio, store=tmp_path / "ray", config=config, actors=2, batch_files=2, progress=False)
    assert remote.recipe_id == local.recipe_id and remote.computed == 6 and remote.total == 7
    assert dict(remote.skipped) == dict(local.skipped) == {"decode_error": 1}
    errors = FeatureStore(tmp_path / "ray").recipe(remote.recipe).errors()
    assert [e["reason"] for e in errors] == ["decode_error"] and errors[0]["path"].endswith("broken.wav")
    a, b = FeatureStore(tmp_path / "local").recipe(local.recipe), FeatureStore(tmp_path / "ray").recipe(remote.recipe)
    ids = sorted(local.item_ids.values())
    assert sorted(remote.item_ids.values()) == ids
    for layer in local.recipe.layers:
        assert np.array_equal(a.read_pooled(layer, ids), b.read_pooled(layer, ids))
    # a rerun (either engine) computes nothing: the engines share the store
    again = extract_ray(audio, store=tmp_path / "ray", config=config, actors=2, batch_files=2, progress=False)
    assert again.computed == 0 and again.cached == 6
    assert extract(audio, store=tmp_path / "ray", config=config, progress=False).computed == 0


def test_bad_cluster_settings_are_refused_before_work(local_ray, audio, tmp_path):
    from mirkit.features.ray_engine import extract_ray

    config = ExtractConfig(encoder="tiny-test")
    with pytest.raises(ConfigError, match="--gpus-per-actor 1.*has 0 GPUs"):
        extract_ray(audio, store=tmp_path / "s", config=config, gpus_per_actor=1, progress=False)
    with pytest.raises(ConfigError, match="--actors 0"):
        extract_ray(audio, store=tmp_path / "s", config=config, actors=0, progress=False)
    assert not any((tmp_path / "s").rglob("*.npz"))


def test_an_unreachable_address_names_it_and_the_fix(audio, tmp_path):
    """In a fresh process: this one already holds a local instance."""
    code = ("from mirkit.features.ray_engine import extract_ray\nfrom mirkit.features.extract import ExtractConfig\n"
            f"extract_ray({str(audio)!r}, store={str(tmp_path / 's')!r}, config=ExtractConfig(encoder='tiny-test'), "
            "address='127.0.0.1:1', progress=False)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "could not connect to --address '127.0.0.1:1'" in result.stderr
