"""``extract`` end to end on good and bad files, reruns, renames, kill -9 and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mirkit.errors import AudioDecodeError
from mirkit.features import FeatureStore
from mirkit.features.extract import ExtractConfig, extract
from tests.conftest import sine, write

CLI = [sys.executable, "-m", "mirkit.cli.main"]


def add_bad_files(folder: Path) -> dict[str, str]:
    """Every bad input of the issue, with the reason extract must record."""
    write(folder / "bad" / "empty_frames.wav", np.zeros(0, dtype=np.float32), 16000)
    (folder / "bad" / "zero_bytes.wav").write_bytes(b"")
    good = write(folder / "tmp.wav", sine(440, 2.0, 16000), 16000, subtype="PCM_16").read_bytes()
    (folder / "tmp.wav").unlink()
    (folder / "bad" / "header_only.wav").write_bytes(good[:44])
    (folder / "bad" / "random.ogg").write_bytes(np.random.default_rng(0).bytes(3000))
    nan = sine(440, 1.0, 16000)
    nan[100] = np.nan
    write(folder / "bad" / "nan.wav", nan, 16000, subtype="FLOAT")
    write(folder / "bad" / "one_sample.wav", np.array([0.2], dtype=np.float32), 16000)
    (folder / "bad" / "readme.txt").write_text("not audio")
    return {"empty_frames.wav": "empty", "zero_bytes.wav": "empty_file", "header_only.wav": "empty",
            "random.ogg": "decode_error", "nan.wav": "non_finite", "one_sample.wav": "too_short",
            "readme.txt": "not_audio"}


def test_good_files_all_extracted_and_bad_ones_recorded(audio_dir, tmp_path):
    write(audio_dir / "multi_48k.wav", sine(440, 1.5, 48000, channels=8), 48000)
    write(audio_dir / "hi_96k.flac", sine(440, 1.0, 96000), 96000)
    expected = add_bad_files(audio_dir)
    report = extract(audio_dir, store=tmp_path / "store", config=ExtractConfig(encoder="tiny-test", num_workers=1),
                     progress=False)
    assert report.computed == 7 and report.total == 14
    errors = FeatureStore(tmp_path / "store").recipe(_recipe(report, tmp_path)).errors()
    got = {Path(e["path"]).name: e["reason"] for e in errors}
    assert got == expected
    assert "Skipped 7" in report.summary() and "errors.jsonl" in report.summary()
    for record in errors:
        assert Path(record["path"]).name in record["message"] or record["reason"] == "not_audio"


def _recipe(report, tmp_path):
    return FeatureStore(tmp_path / "store").find(encoder="tiny-test")[0].recipe


def test_rerun_and_rename_recompute_nothing(audio_dir, tmp_path):
    config = ExtractConfig(encoder="tiny-test", num_workers=0)
    first = extract(audio_dir, store=tmp_path / "s", config=config, progress=False)
    items = FeatureStore(tmp_path / "s").find()[0]
    mtimes = {p: p.stat().st_mtime_ns for p in items.items_dir.rglob("*.npz")}
    (audio_dir / "clip0.wav").rename(audio_dir / "renamed.wav")
    second = extract(audio_dir, store=tmp_path / "s", config=config, progress=False)
    assert first.computed == 5 and second.computed == 0 and second.cached == 5
    assert {p: p.stat().st_mtime_ns for p in items.items_dir.rglob("*.npz")} == mtimes


def test_workers_hash_new_files_and_skip_stored_or_duplicate_content(audio_dir, tmp_path, monkeypatch):
    """Files the hash cache does not know are hashed by the decoding workers; content already
    stored (a renamed file) or seen earlier in the run (a copy) is counted, never decoded twice."""
    import mirkit.features.loader as loader

    shutil.copy(audio_dir / "clip1.wav", audio_dir / "copy_of_clip1.wav")
    first = extract(audio_dir, store=tmp_path / "s", config=ExtractConfig(encoder="tiny-test", num_workers=2),
                    progress=False)
    assert first.computed == 5 and first.cached == 1 and not first.skipped
    assert first.item_ids[str(audio_dir / "copy_of_clip1.wav")] == first.item_ids[str(audio_dir / "clip1.wav")]
    hashes = json.loads((tmp_path / "s" / "hashes.json").read_text())
    assert len(hashes) == 6  # the workers' hashes reached the cache, so a rerun reads no file

    decoded = []
    original = loader.iter_windows
    monkeypatch.setattr(loader, "iter_windows", lambda path, **kw: (decoded.append(Path(path).name), original(path, **kw))[1])
    (audio_dir / "clip3.wav").rename(audio_dir / "renamed.wav")
    write(audio_dir / "new.wav", sine(770, 1.2, 16000), 16000)
    second = extract(audio_dir, store=tmp_path / "s", config=ExtractConfig(encoder="tiny-test", num_workers=0),
                     progress=False)
    assert decoded == ["new.wav"]
    assert second.computed == 1 and second.cached == 6
    assert second.item_ids[str(audio_dir / "renamed.wav")] == first.item_ids[str(audio_dir / "clip3.wav")]


def test_pooled_equals_mean_of_frames_and_windows_do_not_change_short_clips(audio_dir, tmp_path):
    config = ExtractConfig(encoder="tiny-test", pooling="none", num_workers=0)
    report = extract(audio_dir, store=tmp_path / "s", config=config, progress=False)
    items = FeatureStore(tmp_path / "s").find()[0]
    for item_id in report.item_ids.values():
        arrays, meta = items.read(item_id)
        for layer in (0, 1, 2):
            np.testing.assert_allclose(arrays[f"pooled_{layer}"], arrays[f"frames_{layer}"].mean(axis=0), rtol=1e-5,
                                       atol=1e-6)
            assert np.all(np.diff(arrays[f"times_{layer}"]) > 0)


def test_batched_and_windowed_extraction_match_direct_encoding(tmp_path):
    import torch

    from mirkit.encoders import load_encoder

    path = write(tmp_path / "a" / "long.wav", np.random.default_rng(3).standard_normal(8000 * 12).astype(np.float32) * 0.1, 8000)
    report = extract(path.parent, store=tmp_path / "s", progress=False,
                     config=ExtractConfig(encoder="tiny-test", window_s=5.0, batch_size=3, num_workers=1))
    stored = FeatureStore(tmp_path / "s").find()[0].read(report.item_ids[str(path)])[0]["pooled_1"]
    encoder = load_encoder("tiny-test")
    wave = torch.from_numpy(sf.read(path, dtype="float32")[0])
    with torch.inference_mode():  # windows [0,5) [5,10) [10,12) encoded one by one
        frames = [encoder(wave[None, s : s + 40000], layers=[1]).hidden[1][0] for s in (0, 40000, 80000)]
    np.testing.assert_allclose(stored, torch.cat(frames).mean(dim=0).numpy(), rtol=1e-5, atol=1e-6)


def test_pooling_on_the_device_matches_pooling_on_the_host(audio_dir, tmp_path):
    """The CUDA path sums valid frames on the accelerator; run that code on the CPU and compare."""
    from mirkit.features.extract import ExtractHooks

    config = ExtractConfig(encoder="tiny-test", window_s=1.0, batch_size=3, num_workers=0)
    host = extract(audio_dir, store=tmp_path / "host", config=config, progress=False)
    device = extract(audio_dir, store=tmp_path / "device", config=config, progress=False,
                     hooks=ExtractHooks(pool_on_device=True))
    assert host.computed == device.computed == 5
    a, b = FeatureStore(tmp_path / "host").find()[0], FeatureStore(tmp_path / "device").find()[0]
    for path, item_id in host.item_ids.items():
        (arrays_a, meta_a), (arrays_b, meta_b) = a.read(item_id), b.read(device.item_ids[path])
        assert meta_a["frames"] == meta_b["frames"] and meta_a["windows"] == meta_b["windows"] > 0
        for layer in (0, 1, 2):
            np.testing.assert_allclose(arrays_b[f"pooled_{layer}"], arrays_a[f"pooled_{layer}"], rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="gpu tier: CUDA is not available here")
def test_cuda_extraction_matches_cpu_within_bf16_tolerance(audio_dir, tmp_path):
    config = dict(encoder="tiny-test", window_s=1.0, batch_size=4, num_workers=1)
    cpu = extract(audio_dir, store=tmp_path / "cpu", config=ExtractConfig(**config), progress=False)
    gpu = extract(audio_dir, store=tmp_path / "gpu", config=ExtractConfig(device="cuda", **config), progress=False)
    assert cpu.computed == gpu.computed == 5
    a, b = FeatureStore(tmp_path / "cpu").find()[0], FeatureStore(tmp_path / "gpu").find()[0]
    for path, item_id in cpu.item_ids.items():
        for layer in (0, 1, 2):
            x, y = a.read(item_id)[0][f"pooled_{layer}"], b.read(gpu.item_ids[path])[0][f"pooled_{layer}"]
            cosine = float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12))
            assert cosine > 0.99, (path, layer, cosine)


def test_on_error_raise_stops_at_the_first_bad_file(audio_dir, tmp_path):
    add_bad_files(audio_dir)
    with pytest.raises(AudioDecodeError):
        extract(audio_dir / "bad" / "random.ogg", store=tmp_path / "s", progress=False,
                config=ExtractConfig(encoder="tiny-test", on_error="raise", num_workers=0))


def test_file_that_disappears_after_the_scan(audio_dir, tmp_path, monkeypatch):
    import mirkit.features.extract as module

    original = module.plan_jobs

    def plan_then_delete(paths, *args, **kwargs):
        plan = original(paths, *args, **kwargs)
        (audio_dir / "clip1.wav").unlink()  # gone after planning, before the worker hashes and decodes it
        return plan

    monkeypatch.setattr(module, "plan_jobs", plan_then_delete)
    report = extract(audio_dir, store=tmp_path / "s", config=ExtractConfig(encoder="tiny-test", num_workers=0),
                     progress=False)
    assert report.computed == 4 and report.skipped == {"missing": 1}


def _run_cli(*args, **kwargs):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, **kwargs)


def test_cli_exit_codes(audio_dir, tmp_path):
    ok = _run_cli("extract", "--encoder", "tiny-test", "--input", str(audio_dir), "--store", str(tmp_path / "s"),
                  "--no-progress")
    assert ok.returncode == 0 and "Extracted 5/5 files" in ok.stdout
    add_bad_files(audio_dir)
    lenient = _run_cli("extract", "--encoder", "tiny-test", "--input", str(audio_dir), "--store", str(tmp_path / "s"))
    assert lenient.returncode == 0 and "Skipped 7" in lenient.stdout
    strict = _run_cli("extract", "--encoder", "tiny-test", "--input", str(audio_dir), "--store", str(tmp_path / "s"),
                      "--strict")
    assert strict.returncode == 1
    unknown = _run_cli("extract", "--encoder", "tiny-tset", "--input", str(audio_dir), "--store", str(tmp_path / "s"))
    assert unknown.returncode == 2 and "Did you mean 'tiny-test'" in unknown.stderr
    usage = _run_cli("extract", "--encoder", "tiny-test")
    assert usage.returncode == 2
    bad_layers = _run_cli("extract", "--encoder", "tiny-test", "--input", str(audio_dir), "--store", str(tmp_path / "s"),
                          "--layers", "9")
    assert bad_layers.returncode == 2 and "layer 9 does not exist" in bad_layers.stderr
    verify = _run_cli("cache", "verify", "--store", str(tmp_path / "s"))
    assert verify.returncode == 0 and "5 ok, 0 corrupt" in verify.stdout


def test_kill_9_then_rerun_completes_without_recomputing(tmp_path):
    folder = tmp_path / "many"
    rng = np.random.default_rng(0)
    for i in range(150):
        write(folder / f"f{i:03d}.wav", (rng.standard_normal(8000 * 4) * 0.1).astype(np.float32), 8000)
    store = tmp_path / "store"
    args = ["extract", "--encoder", "tiny-test", "--input", str(folder), "--store", str(store), "--batch-size", "1",
            "--workers", "1", "--no-progress"]
    slowed = ("import time; from mirkit.features.extract import ExtractConfig, ExtractHooks, extract; "
              f"extract({str(folder)!r}, store={str(store)!r}, progress=False, "
              "config=ExtractConfig(encoder='tiny-test', batch_size=1, num_workers=1), "
              "hooks=ExtractHooks(before_write=lambda: time.sleep(0.02)))")  # the CLI's settings, slowed down
    proc = subprocess.Popen([sys.executable, "-c", slowed], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(store.rglob("items/*/*.npz"))) < 20:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in store.rglob("items/*/*.npz")}
    assert 20 <= len(done_before) < 150, "the kill must land mid-run"
    verify = _run_cli("cache", "verify", "--store", str(store))
    assert verify.returncode in (0, 1)  # a stray temporary file is possible, a corrupt item is not
    assert " 0 corrupt" in verify.stdout
    rerun = _run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert f"computed {150 - len(done_before)}, already stored {len(done_before)}" in rerun.stdout
    after = {p.name: p.stat().st_mtime_ns for p in store.rglob("items/*/*.npz")}
    assert len(after) == 150 and all(after[name] == mtime for name, mtime in done_before.items())
    assert _run_cli("cache", "verify", "--store", str(store), "--repair").returncode == 0
    # the interrupted-and-resumed store equals an uninterrupted one
    clean = extract(folder, store=tmp_path / "clean", config=ExtractConfig(encoder="tiny-test", num_workers=0),
                    progress=False)
    resumed_items = FeatureStore(store).find()[0]
    clean_items = FeatureStore(tmp_path / "clean").find()[0]
    for item_id in clean.item_ids.values():
        np.testing.assert_allclose(resumed_items.read(item_id)[0]["pooled_2"], clean_items.read(item_id)[0]["pooled_2"],
                                   rtol=1e-5, atol=1e-6)  # batch size 1 vs 8: float summation order only


def test_manifest_input(audio_dir, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps({"path": str(p), "split": "train"}) for p in sorted(audio_dir.glob("*.wav"))[:3]))
    report = extract(manifest, store=tmp_path / "s", config=ExtractConfig(encoder="tiny-test", num_workers=0),
                     progress=False)
    assert report.computed == 3


def test_data_build_validate_and_extract_from_a_manifest(tmp_path):
    pytest.importorskip("tinysoundfont", reason="weights tier: tinysoundfont is installed by scripts/setup.sh")
    suite = tmp_path / "suite"
    built = _run_cli("data", "build", "--suite", "tiny", "--soundfonts", "timgm6mb", "--mma", "off", "--renderers", "tinysoundfont", "--out", str(suite),
                     "--no-progress")
    assert built.returncode == 0, built.stderr
    assert "WARNING: the same soundfont as train" in built.stdout and "Built suite 'tiny'" in built.stdout
    assert _run_cli("data", "validate", str(suite)).returncode == 0
    report = extract(suite / "key" / "manifest.jsonl", store=tmp_path / "s", progress=False,
                     config=ExtractConfig(encoder="tiny-test", num_workers=0))
    assert report.computed == report.total > 0
    (suite / "key" / "manifest.jsonl").write_text("{}\n")
    bad = _run_cli("data", "validate", str(suite), "--skip-audio")
    assert bad.returncode != 0


def test_probe_cli_on_the_tiny_suite_is_resumable(tmp_path):
    pytest.importorskip("tinysoundfont", reason="weights tier: tinysoundfont is installed by scripts/setup.sh")
    from mirkit.data.suite import build_suite

    build_suite(suite="tiny", out_dir=tmp_path / "suite", soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False)
    args = ["probe", "--task", str(tmp_path / "suite" / "genre"), "--encoder", "tiny-test", "--out", str(tmp_path / "run"),
            "--seeds", "2", "--layers", "0,1", "--weighted", "--no-progress"]
    first = _run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "layer0" in first.stdout and "weighted" in first.stdout
    results = sorted((tmp_path / "run" / "results").glob("*.json"))
    assert len(results) == (2 + 1) * 2  # 2 layers + weighted, 2 seeds
    assert all((tmp_path / "run" / "models" / p.stem / "head.safetensors").is_file() for p in results)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["clips"]["train"] > 0 and abs(sum(summary["layers"]["weighted"]["layer_weights"]) - 1) < 1e-5
    mtimes = {p: p.stat().st_mtime_ns for p in results}
    assert _run_cli(*args).returncode == 0
    assert {p: p.stat().st_mtime_ns for p in results} == mtimes  # finished jobs are not redone

    new = tmp_path / "new"
    new.mkdir()
    for path in sorted((tmp_path / "suite" / "genre" / "audio").glob("*.flac"))[:4]:
        shutil.copy(path, new / path.name)
    (new / "broken.wav").write_bytes(b"RIFF....")
    predicted = _run_cli("predict", "--model", str(tmp_path / "run"), "--input", str(new),
                         "--out", str(tmp_path / "preds.jsonl"), "--no-progress")
    assert predicted.returncode == 0, predicted.stderr
    assert "Skipped 1: decode_error 1" in predicted.stdout and "Wrote 4 predictions" in predicted.stdout
    rows = [json.loads(line) for line in (tmp_path / "preds.jsonl").read_text().splitlines()]
    styles = {"rock", "swing", "bossa", "waltz", "march", "ballad", "funk", "reggae"}
    assert len(rows) == 4 and all(r["prediction"] in styles and r["encoder"] == "tiny-test" for r in rows)
    assert all(abs(sum(r["scores"].values()) - 1) < 0.05 or len(r["scores"]) == 5 for r in rows)
    as_csv = _run_cli("predict", "--model", str(tmp_path / "run"), "--input", str(new), "--out",
                      str(tmp_path / "preds.csv"), "--strict", "--no-progress")
    assert as_csv.returncode == 1 and (tmp_path / "preds.csv").read_text().startswith("path,prediction,details")


def test_tune_cli_runs_resumes_and_predicts(tiny_suite, tmp_path):
    args = ["tune", "--task", str(tiny_suite / "genre"), "--encoder", "tiny-test", "--method", "adapter",
            "--out", str(tmp_path / "run"), "--seeds", "2", "--epochs", "2", "--batch-size", "4", "--crop-s", "1",
            "--adapter-size", "4", "--no-progress"]
    first = _run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "tiny-test adapter on genre (2 seeds)" in first.stdout and "trainable" in first.stdout
    results = sorted((tmp_path / "run" / "results").glob("*.json"))
    assert len(results) == 2
    mtimes = {p: p.stat().st_mtime_ns for p in results}
    assert _run_cli(*args).returncode == 0
    assert {p: p.stat().st_mtime_ns for p in results} == mtimes  # finished seeds are not redone
    new = tmp_path / "new"
    new.mkdir()
    for path in sorted((tiny_suite / "genre" / "audio").glob("*.flac"))[:3]:
        shutil.copy(path, new / path.name)
    (new / "broken.wav").write_bytes(b"RIFF....")
    predicted = _run_cli("predict", "--model", str(tmp_path / "run"), "--input", str(new),
                         "--out", str(tmp_path / "preds.jsonl"), "--no-progress")
    assert predicted.returncode == 0, predicted.stderr
    assert "Wrote 3 predictions" in predicted.stdout and "skipped " + str(new / "broken.wav") in predicted.stdout
    rows = [json.loads(line) for line in (tmp_path / "preds.jsonl").read_text().splitlines()]
    assert {r["method"] for r in rows} == {"adapter"} and all(r["prediction"] in r["scores"] for r in rows)
    wrong = _run_cli("tune", "--task", str(tiny_suite / "genre"), "--encoder", "tiny-test", "--method", "prompt",
                     "--out", str(tmp_path / "p"), "--no-progress")
    assert wrong.returncode != 0 and "prompt" in wrong.stderr
