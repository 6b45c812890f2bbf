"""Suite-level tests moved from ``tests/unit/test_robustness.py`` (they build the tiny suite): `mirkit robustness`: each perturbation does what its name says, perturbed audio is deterministic, a probe"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf


def test_a_probe_run_scored_clean_equals_its_own_test_score_and_perturbed_is_recorded(tiny_suite, tmp_path):
    from mirkit.adapt.config import ProbeRunConfig
    from mirkit.adapt.run import probe_task
    from mirkit.robustness.run import score_run

    task, store = tiny_suite / "genre", tmp_path / "store"
    summary = probe_task(ProbeRunConfig(task_dir=task, encoder="logmel", out_dir=tmp_path / "probe", store=store, seeds=2,
                         progress=False))
    result = score_run(run_dir=tmp_path / "probe", task_dir=task, out_dir=tmp_path / "rob", store=store,
                       perturbations=["level-minus-12db", "pink-noise-10db"], progress=False)
    chosen = max((k for k in summary["layers"] if k != "weighted"), key=lambda k: summary["layers"][k]["valid_headline"])
    assert result["job"] == chosen and result["seeds"] == 2 and result["clean_features_reused"]
    assert result["clean"]["mean"] == pytest.approx(summary["layers"][chosen]["headline"]["mean"], abs=1e-6)
    test_clips = sum(1 for line in (task / "manifest.jsonl").read_text().splitlines() if json.loads(line)["split"] == "test")
    for name in ("level-minus-12db", "pink-noise-10db"):
        scored = result["perturbed"][name]
        assert scored["clips"] == test_clips and 0 <= scored["mean"] <= 1
        assert scored["drop"] == pytest.approx(result["clean"]["mean"] - scored["mean"])
        rows = [json.loads(line) for line in (tmp_path / "rob/audio/genre" / name / "manifest.jsonl").read_text().splitlines()]
        assert len(rows) == test_clips and all(r["split"] == "test" and r["rendering"]["perturbation"] == name for r in rows)
    saved = json.loads((tmp_path / "rob/results/genre__logmel.json").read_text())
    assert saved["perturbed"].keys() == result["perturbed"].keys()


def test_a_tune_run_scored_clean_equals_its_own_test_score(tiny_suite, tmp_path):
    from dataclasses import replace

    from mirkit.robustness.run import score_tune_run
    from mirkit.tune import TuneConfig, tune_task

    config = replace(TuneConfig(), method="bitfit", max_epochs=2, batch_size=4, crop_s=1.0)
    tune_task(task_dir=tiny_suite / "genre", encoder="tiny-test", out_dir=tmp_path / "tune", config=config, seeds=2,
              progress=False)
    result = score_tune_run(run_dir=tmp_path / "tune", task_dir=tiny_suite / "genre", out_dir=tmp_path / "rob",
                            perturbations=["room"], progress=False)
    own = [json.loads(p.read_text())["test"]["headline"] for p in sorted((tmp_path / "tune/results").glob("*.json"))]
    assert result["seeds"] == 2 and result["method"] == "bitfit" and result["encoder"] == "tiny-test / bitfit"
    assert result["clean"]["mean"] == pytest.approx(float(np.mean(own)), abs=1e-6)
    assert 0 <= result["perturbed"]["room"]["mean"] <= 1
    assert (tmp_path / "rob/results/genre__tiny-test__bitfit.json").is_file()


def test_a_peak_loudness_policy_makes_level_changes_vanish_and_is_kept_with_the_run(tiny_suite, tmp_path):
    from mirkit.adapt.config import ProbeRunConfig
    from mirkit.adapt.run import probe_task
    from mirkit.errors import ConfigError
    from mirkit.robustness.run import score_run

    task, store = tiny_suite / "instrument", tmp_path / "store"
    probe_task(ProbeRunConfig(task_dir=task, encoder="logmel", out_dir=tmp_path / "probe", store=store, seeds=1, loudness="peak",
               progress=False))
    result = score_run(run_dir=tmp_path / "probe", task_dir=task, out_dir=tmp_path / "rob", store=store,
                       perturbations=["level-minus-12db", "level-plus-12db", "lowpass-4khz", "highpass-300hz",
                                      "pink-noise-10db"], progress=False)
    for name in ("level-minus-12db", "level-plus-12db"):
        assert result["perturbed"][name]["metrics"] == pytest.approx(result["clean_metrics"], abs=1e-9)
    # the perturbed audio is what is scored: filters and noise move some metric (a tiny probe's accuracy alone may not)
    assert any(result["perturbed"][name]["metrics"] != pytest.approx(result["clean_metrics"], abs=1e-9)
               for name in ("lowpass-4khz", "highpass-300hz", "pink-noise-10db"))
    saved = json.loads(next((tmp_path / "probe" / "results").glob("*.json")).read_text())
    assert saved["loudness"] == "peak"  # what `mirkit predict` applies to new audio
    with pytest.raises(ConfigError, match="recipe.*--loudness"):  # results on other features are not reused
        probe_task(ProbeRunConfig(task_dir=task, encoder="logmel", out_dir=tmp_path / "probe", store=store, seeds=1, progress=False))


def test_a_tune_run_with_the_peak_policy_ignores_level_in_training_scoring_and_predict(tiny_suite, tmp_path):
    from dataclasses import replace

    from mirkit.errors import ConfigError
    from mirkit.robustness.run import score_tune_run
    from mirkit.tune import TuneConfig, tune_task
    from mirkit.tune.predict import predict_tuned

    task = tiny_suite / "instrument"
    config = replace(TuneConfig(), method="probe", max_epochs=2, batch_size=4, crop_s=1.0, loudness="peak",
                     augment="gain,eq")
    tune_task(task_dir=task, encoder="logmel", out_dir=tmp_path / "tune", config=config, seeds=1, progress=False)
    result = score_tune_run(run_dir=tmp_path / "tune", task_dir=task, out_dir=tmp_path / "rob",
                            perturbations=["level-minus-12db", "level-plus-12db", "lowpass-4khz"], progress=False)
    own = json.loads(next((tmp_path / "tune/results").glob("*.json")).read_text())["test"]["headline"]
    assert result["clean"]["mean"] == pytest.approx(own, abs=1e-6)  # the test split was levelled the same way
    for name in ("level-minus-12db", "level-plus-12db"):
        assert result["perturbed"][name]["mean"] == pytest.approx(result["clean"]["mean"], abs=1e-9)
    assert json.loads((tmp_path / "tune/tune.json").read_text())["config"]["loudness"] == "peak"
    clip = next(p for p in sorted((task / "audio").rglob("*")) if p.suffix in (".wav", ".flac"))
    wave, rate = sf.read(clip, dtype="float32")
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in/loud.wav", wave, rate, subtype="FLOAT")  # float: no rounding of the quiet copy's tail
    sf.write(tmp_path / "in/quiet.wav", wave / 8, rate, subtype="FLOAT")
    predict_tuned(run_dir=tmp_path / "tune", source=tmp_path / "in", out_path=tmp_path / "out.jsonl", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["prediction"] == rows[1]["prediction"]  # an 18 dB quieter copy: the same output
    assert rows[0]["scores"] == pytest.approx(rows[1]["scores"], abs=2e-4)
    with pytest.raises(ConfigError, match="loudness"):
        replace(config, loudness="rms").validate()


def test_an_augmented_probe_trains_on_copies_of_the_training_clips_whose_labels_follow_by_rule(tiny_suite, tmp_path):
    from mirkit.adapt.config import ProbeRunConfig
    from mirkit.adapt.run import probe_task
    from mirkit.data.manifest import read_manifest
    from mirkit.errors import ConfigError
    from mirkit.robustness.run import score_run

    task, store = tiny_suite / "key", tmp_path / "store"
    args = dict(task_dir=task, encoder="logmel", out_dir=tmp_path / "probe", store=store, seeds=1, loudness="peak",
                progress=False)
    summary = probe_task(ProbeRunConfig(augment="eq,room,pitch", **args))
    assert summary["augment"] == "eq,room,pitch" and summary["augment_copies"] == 1
    assert summary["clips"]["train"] == 2 * summary["augmented_clips"] > 0  # the originals and one copy of each
    folder = tmp_path / "probe/augmented/eq+room+pitch-x1/key"
    copies = read_manifest(folder / "manifest.jsonl")
    assert (folder / "task.json").read_bytes() == (task / "task.json").read_bytes()  # the copies say their kind too
    originals = {e.path: e for e in read_manifest(task / "manifest.jsonl")}
    assert {e.split for e in copies} == {"train"} and all(e.path.endswith(".flac") for e in copies)
    shifted = [e for e in copies if e.rendering["label_changes"].get("semitones")]
    assert shifted  # some copies were pitch-shifted, and their key moved with them
    for e in shifted:
        assert e.labels["key"] != originals[e.rendering["augmented_from"]].labels["key"]
        assert e.piece == originals[e.rendering["augmented_from"]].piece  # splits stay by piece
    result = json.loads(next((tmp_path / "probe/results").glob("*.json")).read_text())
    assert result["augment"] == "eq,room,pitch" and result["augmented_clips"] == summary["augmented_clips"]
    again = probe_task(ProbeRunConfig(augment="eq,room,pitch", **args))
    assert again["jobs"]["trained"] == 0  # finished jobs are reused
    with pytest.raises(ConfigError, match="augment='eq,room,pitch'"):  # a plain run may not reuse them
        probe_task(ProbeRunConfig(**args))
    scored = score_run(run_dir=tmp_path / "probe", task_dir=task, out_dir=tmp_path / "rob", store=store,
                       perturbations=["lowpass-4khz"], progress=False)
    assert scored["clean"]["mean"] == pytest.approx(summary["layers"][result["job"]]["headline"]["mean"], abs=1e-9)
    with pytest.raises(ConfigError, match="rate"):  # genre has no rule for a speed change: refused before any work
        probe_task(ProbeRunConfig(task_dir=tiny_suite / "genre", encoder="logmel", out_dir=tmp_path / "g", store=store,
                   augment="stretch", progress=False))
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("task", ["beat", "transcription"])
def test_a_frame_level_probe_run_is_scored_on_perturbed_audio_as_it_scored_its_test_split(tiny_suite, tmp_path, task):
    from mirkit.adapt.config import FrameProbeConfig, ProbeRunConfig
    from mirkit.adapt.run import probe_task
    from mirkit.robustness.timed import score_timed_run

    store = tmp_path / "store"
    summary = probe_task(ProbeRunConfig(task_dir=tiny_suite / task, encoder="logmel", out_dir=tmp_path / "probe", store=store,
                               seeds=1, probe=FrameProbeConfig(max_epochs=3), progress=False))
    results = score_timed_run(run_dir=tmp_path / "probe", task_dir=tiny_suite / task, out_dir=tmp_path / "rob",
                              store=store, perturbations=["level-minus-12db", "room"], progress=False)
    own = summary["layers"][results[0]["job"]]["headline"]["mean"]
    assert results[0]["task"] == task and results[0]["clean"]["mean"] == pytest.approx(own, abs=1e-6)
    tests = sum(json.loads(line)["split"] == "test" for line in (tiny_suite / task / "manifest.jsonl").read_text().splitlines())
    for result in results:
        assert set(result["perturbed"]) == {"level-minus-12db", "room"}
        for scored in result["perturbed"].values():  # every clip scored, its labels (note sidecars too) found
            assert scored["clips"] == tests and 0 <= scored["mean"] <= 1
            assert scored["drop"] == pytest.approx(result["clean"]["mean"] - scored["mean"])
    if task == "beat":  # the tempo of the beat activations, as its own row of the tempo table
        assert [r["task"] for r in results] == ["beat", "tempo"] and results[1]["encoder"] == "logmel (beat probe)"
        assert results[1]["headline_metric"] == "tempo_acc1"
        assert len(list((tmp_path / "rob" / "results").glob("tempo__logmel*.json"))) == 1
    else:
        assert len(results) == 1


def test_a_frame_level_tune_run_is_scored_as_it_scored_its_test_split(tiny_suite, tmp_path):
    from dataclasses import replace

    from mirkit.robustness.timed import score_timed_tune_run
    from mirkit.tune import TuneConfig, tune_task

    config = replace(TuneConfig(), method="bitfit", max_epochs=2, batch_size=4, crop_s=2.0)
    tune_task(task_dir=tiny_suite / "beat", encoder="tiny-test", out_dir=tmp_path / "tune", config=config, seeds=1,
              progress=False)
    results = score_timed_tune_run(run_dir=tmp_path / "tune", task_dir=tiny_suite / "beat", out_dir=tmp_path / "rob",
                                   perturbations=["room"], progress=False)
    own = json.loads(next((tmp_path / "tune/results").glob("*.json")).read_text())["test"]
    assert [r["task"] for r in results] == ["beat", "tempo"] and results[0]["encoder"] == "tiny-test / bitfit"
    assert results[0]["clean"]["mean"] == pytest.approx(own["headline"], abs=1e-6)
    assert results[1]["clean"]["mean"] == pytest.approx(own["tempo_acc1"], abs=1e-6)
    assert 0 <= results[0]["perturbed"]["room"]["mean"] <= 1 and results[1]["encoder"] == "tiny-test / bitfit (beat)"
