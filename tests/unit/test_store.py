"""Recipe ids, atomic items, bulk reads and verify/repair."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mirkit.errors import ConfigError, StoreError
from mirkit.features import FeatureRecipe, FeatureStore

RECIPE = FeatureRecipe(encoder="tiny-test", weights_revision="seed0", sample_rate=8000, window_s=5.0, hop_s=5.0,
                       min_duration_s=0.008, batching="pad-zero", layers=(0, 1, 2))


def test_every_field_changes_the_recipe_id():
    changes = dict(encoder="logmel", weights_revision="x", sample_rate=16000, window_s=4.0, hop_s=2.0,
                   min_duration_s=1.0, batching="exact-length", max_window_s=9.0, layers=(0,), pooling="none", channel_policy="first",
                   resampler="soxr-VHQ", dtype="float16", format_version=2, frame_rate_hz=20.0,
                   runtime="onnxruntime", loudness="lufs")
    assert set(changes) == {f.name for f in dataclasses.fields(FeatureRecipe)}
    ids = {dataclasses.replace(RECIPE, **{k: v}).recipe_id for k, v in changes.items()}
    assert len(ids) == len(changes) and RECIPE.recipe_id not in ids
    assert FeatureRecipe.from_dict(RECIPE.to_dict()) == RECIPE


def test_bad_recipe_values():
    with pytest.raises(ConfigError, match="pooling='max'"):
        dataclasses.replace(RECIPE, pooling="max")


def _item(seed):
    rng = np.random.default_rng(seed)
    return {f"pooled_{k}": rng.standard_normal(d).astype(np.float32) for k, d in ((0, 16), (1, 16), (2, 8))}


def test_write_read_and_bulk_read(tmp_path):
    items = FeatureStore(tmp_path).recipe(RECIPE)
    written = {f"{i:032x}": _item(i) for i in range(5)}
    for item_id, arrays in written.items():
        items.write(item_id, arrays, {"path": item_id})
    arrays, meta = items.read("0" * 31 + "3")
    np.testing.assert_array_equal(arrays["pooled_1"], written["0" * 31 + "3"]["pooled_1"])
    assert meta == {"path": "0" * 31 + "3"}
    order = list(reversed(written))
    matrix = items.read_pooled(1, order)
    np.testing.assert_array_equal(matrix, np.stack([written[i]["pooled_1"] for i in order]))
    assert (items.dir / "consolidated" / "layer1.npz").is_file()
    np.testing.assert_array_equal(items.read_pooled(1, order[:2]), matrix[:2])  # served from the consolidated file
    new_id = "f" * 32
    items.write(new_id, _item(9), {})
    np.testing.assert_array_equal(items.read_pooled(1, [new_id])[0], _item(9)["pooled_1"])  # cache rebuilt
    with pytest.raises(StoreError, match="layer 7 is not stored"):
        items.read_pooled(7, order)
    assert not list(tmp_path.rglob("*.tmp"))


def test_verify_finds_and_repairs_corruption(tmp_path):
    items = FeatureStore(tmp_path).recipe(RECIPE)
    for i in range(5):
        items.write(f"{i:032x}", _item(i), {})
    assert items.verify().ok == 5
    victim = items.item_path(f"{1:032x}")
    victim.write_bytes(victim.read_bytes()[:100])
    # the odd shape is written first in file order and is a clear minority (1 of 4 readable items), so the
    # expected width comes from the majority, not from which item is read first
    bad_shape = _item(0)
    bad_shape["pooled_2"] = np.zeros(3, dtype=np.float32)
    items.write(f"{0:032x}", bad_shape, {})
    (items.items_dir / "00" / ".x.npz.123.tmp").write_bytes(b"partial")
    report = items.verify()
    assert report.ok == 3 and len(report.corrupt) == 2 and len(report.temporary) == 1
    assert any(path.endswith(f"{0:032x}.npz") and "shape (3,), expected (8,)" in why for path, why in report.corrupt)
    items.verify(repair=True)
    assert items.verify().ok == 3 and not items.verify().corrupt and not victim.exists()


def test_store_refuses_a_mismatched_recipe_file(tmp_path):
    items = FeatureStore(tmp_path).recipe(RECIPE)
    (items.dir / "recipe.json").write_text(json.dumps({**RECIPE.to_dict(), "encoder": "other"}))
    with pytest.raises(StoreError, match="does not match recipe"):
        FeatureStore(tmp_path).recipe(RECIPE)


def test_errors_file_survives_a_torn_line(tmp_path):
    items = FeatureStore(tmp_path).recipe(RECIPE)
    items.record_error({"item": "a", "reason": "decode_error"})
    with open(items.errors_path, "a") as handle:
        handle.write('{"item": "b", "rea')
    assert [e["item"] for e in items.errors()] == ["a"]


def test_batches_ramp_up_then_stay_full():
    import torch

    from mirkit.features.loader import Batcher, WindowMessage

    batcher = Batcher(4, exact_length=False)
    sizes = []
    for i in range(13):
        message = WindowMessage(job=i, index=0, start=0, wave=torch.zeros(10), last=True)
        sizes += [len(batch) for batch in batcher.add(message)]
    sizes += [len(batch) for batch in batcher.flush()]
    assert sizes == [1, 2, 4, 4, 2]  # the model starts on the first window; no window is lost


def test_default_batch_and_workers_follow_the_device(monkeypatch):
    from mirkit.features import loader
    from mirkit.features.extract import CPU_BATCH, GPU_BATCH, ExtractConfig

    assert ExtractConfig(encoder="tiny-test").rows == CPU_BATCH
    assert ExtractConfig(encoder="tiny-test", device="cuda").rows == GPU_BATCH
    assert ExtractConfig(encoder="tiny-test", batch_size=3).rows == 3
    monkeypatch.setattr(loader, "cores", lambda: 2)
    assert loader.default_workers("cpu") == 0  # two cores: decoding between batches beats a competing process
    monkeypatch.setattr(loader, "cores", lambda: 8)
    assert loader.default_workers("cpu") == 4 and loader.default_workers("cuda") == 6
