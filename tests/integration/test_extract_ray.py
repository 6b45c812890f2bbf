"""`mirkit extract --engine ray` on a local Ray instance (2 CPUs): the same items as the local engine
(exactly equal arrays), stored items reused, bad files recorded as locally, bad cluster settings refused,
and killed worker processes cost nothing but their work in flight."""

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


def _extract_in_a_process(audio, store) -> subprocess.Popen:
    """A driver of its own (its own local Ray instance), one file per batch so that work is in flight."""
    code = ("from mirkit.features.ray_engine import extract_ray\nfrom mirkit.features.extract import ExtractConfig\n"
            f"r = extract_ray({str(audio)!r}, store={str(store)!r}, config=ExtractConfig(encoder='tiny-test'), "
            "actors=2, batch_files=1, progress=False)\nprint('computed', r.computed)")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stored(store) -> int:
    return sum(1 for _ in store.rglob("*.npz"))


def test_a_killed_worker_loses_nothing_and_a_rerun_computes_only_what_is_missing(tmp_path):
    """Both actor processes are killed (SIGKILL) mid-run; whatever Ray then does with the run, a rerun
    completes, every stored item reads back whole, and stored items are not computed again."""
    import time

    psutil = pytest.importorskip("psutil", reason="finding Ray's worker processes needs psutil (Ray installs it)")
    folder = tmp_path / "many"
    folder.mkdir()
    t = np.arange(int(4.0 * 16000)) / 16000
    for i in range(160):
        sf.write(folder / f"tone{i:03d}.wav", (0.3 * np.sin(2 * np.pi * (110 + 3 * i) * t)).astype(np.float32), 16000)
    store = tmp_path / "store"
    driver = _extract_in_a_process(folder, store)
    deadline = time.monotonic() + 240
    while _stored(store) < 4 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    actors = [p for p in psutil.Process(driver.pid).children(recursive=True)
              if "_ExtractActor" in " ".join(p.cmdline())]
    for process in actors:
        process.suspend()  # freeze them where they are, then count what is stored
    stored_at_kill = _stored(store)
    for process in actors:
        process.kill()
    assert actors and 0 < stored_at_kill < 160, (len(actors), stored_at_kill)
    driver.wait(timeout=300)  # Ray restarts the actors and finishes (seen here), or gives up: either way, rerun
    if driver.returncode == 0:  # Ray's restarted actors took over the dead ones' claims and finished the run
        assert _stored(store) == 160
    before = _stored(store)
    again = extract(folder, store=store, config=ExtractConfig(encoder="tiny-test"), progress=False)
    assert again.computed == 160 - before and again.cached == before  # no stored item recomputed
    items = FeatureStore(store).recipe(again.recipe)
    ids = sorted(again.item_ids.values())
    assert len(ids) == 160
    for layer in again.recipe.layers:  # every item, from before and after the kill, reads back whole
        assert items.read_pooled(layer, ids).shape[0] == 160


def test_the_driver_expects_the_recipe_cpu_actors_store_under(audio, tmp_path):
    """musicnn switches to ONNX Runtime on the CPU (runtime auto), and the runtime is part of the recipe:
    the driver must expect what the actors' local engine stores (it once expected PyTorch's and refused)."""
    pytest.importorskip("musicnn", reason="musicnn's weights come from the musicnn wheel (setup.sh installs it)")
    from mirkit.features.ray_engine import actor_recipe

    config = ExtractConfig(encoder="musicnn-mtt")
    local = extract(audio, store=tmp_path / "s", config=config, progress=False)
    assert actor_recipe(config).recipe_id == local.recipe_id
    assert actor_recipe(ExtractConfig(encoder="musicnn-mtt", runtime="torch")).recipe_id != local.recipe_id
