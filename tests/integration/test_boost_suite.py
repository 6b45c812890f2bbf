"""Suite-level tests moved from ``tests/unit/test_boost.py`` (they build the tiny suite): `mirkit boost`: boosted task models start exactly at their baselines, low-data subsets take whole"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mirkit.boost import BoostConfig, boost_task
from mirkit.boost.data import BoostClip, training_subset
from mirkit.errors import CheckpointError, ConfigError
from tests.unit.test_boost import FAST  # noqa: F401


def test_a_boost_run_trains_three_systems_resumes_and_reports(tiny_suite, tmp_path):
    from mirkit.bench.boost_report import write_boost_report

    args = dict(task_dir=tiny_suite / "beat", model="beat-tcn", encoder="tiny-test", store=tmp_path / "store",
                seeds=2, progress=False)
    summary = boost_task(out_dir=tmp_path / "run", config=FAST, **args)
    assert set(summary["systems"]) == {"baseline", "boosted", "twin"}
    assert all(set(cells) == {"0.5", "1"} for cells in summary["systems"].values())
    assert summary["cells"] == {"trained": 12, "copied": 0, "reused": 0}
    assert {(g["fraction"], g["system"]) for g in summary["gains"]} == {
        (f, s) for f in ("0.5", "1") for s in ("boosted", "twin", "boosted vs twin")}
    result = json.loads((tmp_path / "run/results/boosted__f0.5__seed1.json").read_text())
    assert result["source"] == "tiny-test" and result["train_pieces"] < json.loads(
        (tmp_path / "run/results/boosted__f1__seed1.json").read_text())["train_pieces"]
    assert len(result["layer_weights"]) == 3 and result["gate"] is not None
    assert 0 <= result["test"]["headline"] <= 1 and result["test"]["headline"] == result["test"]["f_measure"]
    assert (tmp_path / "run/models/twin__f1__seed0/weights.safetensors").is_file()
    again = boost_task(out_dir=tmp_path / "run", config=FAST, **args)
    assert again["cells"] == {"trained": 0, "copied": 0, "reused": 12} and again["systems"] == summary["systems"]
    md, _ = write_boost_report(tmp_path / "run")
    text = md.read_text()
    assert "| baseline |" in text and "gain claimed" in text and (tmp_path / "run/plots/boost-curves.png").is_file()
    assert "fusion concat, token-out 0, feature dropout 0," in text  # the injected path's settings are named
    with pytest.raises(CheckpointError, match="config.fusion"):
        boost_task(out_dir=tmp_path / "run", config=BoostConfig(fractions="1", fusion="film", steps=2), **args)
    # the boosted model (largest fraction, best validated seed) on new audio: beats, downbeats, tempo per file
    from mirkit.boost.predict import predict_boosted

    (tmp_path / "new").mkdir()
    for file in sorted((tiny_suite / "tempo" / "audio").glob("*.flac"))[:2]:
        (tmp_path / "new" / file.name).write_bytes(file.read_bytes())
    (tmp_path / "new" / "broken.wav").write_bytes(b"not audio")
    report, rows = predict_boosted(run_dir=tmp_path / "run", source=tmp_path / "new", store=tmp_path / "store",
                                   out_dir=tmp_path / "pred", progress=False)
    assert rows == 2 and report.num_skipped == 1
    line = json.loads((tmp_path / "pred" / "predictions.jsonl").read_text().splitlines()[0])
    assert line["system"] == "boosted" and line["fraction"] == 1 and line["tempo_bpm"] > 0
    assert set(line["downbeats"]) <= set(line["beats"])
    with pytest.raises(ConfigError, match="no boosted cell at fraction 0.25"):
        predict_boosted(run_dir=tmp_path / "run", source=tmp_path / "new", store=tmp_path / "store",
                        out_dir=tmp_path / "p2", fraction=0.25, progress=False)


def test_bad_settings_are_refused_before_training(tiny_suite, tmp_path):
    args = dict(out_dir=tmp_path / "run", store=tmp_path / "store", config=FAST, progress=False)
    with pytest.raises(ConfigError, match="solves transcription tasks"):
        boost_task(task_dir=tiny_suite / "beat", model="onsets-frames", encoder="tiny-test", **args)
    with pytest.raises(ConfigError, match="itself a random-init twin"):
        boost_task(task_dir=tiny_suite / "beat", model="beat-tcn", encoder="random:tiny-test", **args)
    with pytest.raises(ConfigError, match="below the 20 fps the beat task needs"):  # musicnn's patch-level layer
        boost_task(task_dir=tiny_suite / "beat", model="beat-tcn", encoder="musicnn-mtt",
                   **{**args, "config": BoostConfig(layers="7")})
    assert not (tmp_path / "run" / "results").exists()


def test_the_tagging_model_aggregates_injected_frames_and_predicts_tags(tiny_suite, tmp_path):
    from mirkit.boost.predict import predict_boosted

    config = BoostConfig(fractions="1", steps=8, eval_every=4, batch_size=4, crop_s=2.0, fusion="film")
    summary = boost_task(task_dir=tiny_suite / "tagging", model="short-chunk", encoder="tiny-test",
                         out_dir=tmp_path / "run", store=tmp_path / "store", config=config, seeds=1, progress=False)
    cell = summary["systems"]["boosted"]["1"]
    assert summary["metric"] == "roc_auc" and 0 <= cell["mean"] <= 1 and len(cell["layer_weights"]) == 3
    result = json.loads((tmp_path / "run/results/boosted__f1__seed0.json").read_text())
    assert result["test"]["headline"] == result["test"]["roc_auc"] and "rock" in result["classes"]
    _, rows = predict_boosted(run_dir=tmp_path / "run", source=tiny_suite / "tagging" / "manifest.jsonl",
                              store=tmp_path / "store", out_dir=tmp_path / "pred", progress=False)
    line = json.loads((tmp_path / "pred" / "predictions.jsonl").read_text().splitlines()[0])
    assert rows > 0 and set(line["tags"]) == set(result["classes"]) and all(0 <= p <= 1 for p in line["tags"].values())
    # a fraction that leaves a tag without a training piece is refused before training
    with pytest.raises(ConfigError, match="without a training clip"):
        boost_task(task_dir=tiny_suite / "tagging", model="short-chunk", encoder="tiny-test", out_dir=tmp_path / "r2",
                   store=tmp_path / "store", config=BoostConfig(fractions="0.01,1", steps=2), seeds=1, progress=False)
    assert not (tmp_path / "r2" / "results").exists()  # refused before any cell trained


def test_augmented_copies_join_the_training_split_by_piece_and_unruled_label_changes_are_refused(tiny_suite, tmp_path):
    import soundfile as sf

    args = dict(task_dir=tiny_suite / "beat", model="beat-tcn", encoder="tiny-test", store=tmp_path / "store",
                seeds=1, progress=False)
    config = replace(FAST, fractions="0.5", augment="gain,room", augment_copies=2)
    summary = boost_task(out_dir=tmp_path / "run", config=config, **args)
    assert summary["cells"]["trained"] == 3
    rows = [json.loads(line) for line in (tmp_path / "run/augmented/beat/manifest.jsonl").read_text().splitlines()]
    train = [json.loads(line) for line in (tiny_suite / "beat/manifest.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert len(rows) == 2 * len(train) and {r["split"] for r in rows} == {"train"}
    by_source = {t["path"]: t for t in train}
    changed = 0
    for row in rows:  # same labels and piece as the clip it copies; the audio went through the augmentations
        source = by_source[row["rendering"]["augmented_from"]]
        assert row["labels"] == source["labels"] and row["piece"] == source["piece"]
        copy, _ = sf.read(tmp_path / "run/augmented/beat" / row["path"], dtype="float32")
        clean, _ = sf.read(tiny_suite / "beat" / source["path"], dtype="float32")
        assert copy.shape == clean.shape
        changed += not np.allclose(copy, clean, atol=1e-4)
    assert changed > len(rows) // 2  # each augmentation is drawn with probability 0.5: most copies differ
    clips = [BoostClip(r["path"], r["piece"], np.zeros((2, 1)), np.zeros(2), np.zeros(2), {}, 1.0) for r in rows]
    subset = training_subset(clips, fraction=0.5, seed=0)
    assert {c.piece for c in subset} and all(sum(c.piece == p for c in subset) == 2 * sum(t["piece"] == p for t in train)
                                            for p in {c.piece for c in subset})  # a piece comes with all its copies
    with pytest.raises(CheckpointError, match="config.augment"):  # a run folder keeps its augmentation
        boost_task(out_dir=tmp_path / "run", config=replace(config, augment="noise"), **args)
    with pytest.raises(ConfigError, match="no rule for how the tags labels"):  # the tempo-class tag would move
        boost_task(task_dir=tiny_suite / "tagging", model="short-chunk", encoder="tiny-test", out_dir=tmp_path / "r2",
                   store=tmp_path / "store", config=BoostConfig(augment="stretch"), progress=False)


def test_label_changing_copies_carry_their_labels_along(tiny_suite, tmp_path):
    """Offline copies under pitch shift and time stretch: notes transposed and their times scaled (with
    their own sidecars), beats scaled and the tempo with them; the changes are recorded per copy."""
    from mirkit.data.augmented import write_augmented_copies

    folder = write_augmented_copies(tiny_suite / "transcription", tmp_path / "aug", names=("pitch", "stretch"),
                                    copies=3, label_name="notes", progress=False)
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    originals = {json.loads(line)["path"]: json.loads(line)
                 for line in (tiny_suite / "transcription/manifest.jsonl").read_text().splitlines()}
    kinds = set()
    for row in rows:
        changes = row["rendering"]["label_changes"]
        source = originals[row["rendering"]["augmented_from"]]
        notes = json.loads((tiny_suite / "transcription" / source["labels"]["notes"]).read_text())
        copied = json.loads(Path(row["labels"]["notes"]).read_text())
        shift, rate = changes.get("semitones", 0), changes.get("rate", 1.0)
        assert abs(row["duration_s"] - min(source["duration_s"], source["duration_s"] / rate)) < 0.05
        kept = [n for n in notes if n["onset_s"] / rate < row["duration_s"]]  # a slower copy is cut at 4 s
        assert [n["pitch"] for n in copied] == [n["pitch"] + shift for n in kept]
        assert np.allclose([n["onset_s"] for n in copied], [n["onset_s"] / rate for n in kept], atol=1e-5)
        assert Path(row["labels"]["piano_roll"]).is_file()
        kinds.update(changes)
    assert kinds == {"semitones", "rate"}  # both were drawn for some copies
    folder = write_augmented_copies(tiny_suite / "beat", tmp_path / "aug", names=("stretch",), copies=2,
                                    label_name="beats", progress=False)
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    beat = {json.loads(line)["path"]: json.loads(line) for line in (tiny_suite / "beat/manifest.jsonl").read_text().splitlines()}
    stretched = [r for r in rows if r["rendering"]["label_changes"]]
    assert stretched
    for row in stretched:
        rate, source = row["rendering"]["label_changes"]["rate"], beat[row["rendering"]["augmented_from"]]["labels"]
        beats = np.array(source["beats"]) / rate
        assert np.allclose(row["labels"]["beats"], beats[beats < row["duration_s"]], atol=1e-5)
        assert row["labels"]["bpm"] == pytest.approx(source["bpm"] * rate, abs=1e-3)


def test_augmented_tagging_copies_use_the_originals_tag_classes(tiny_suite, tmp_path):
    config = BoostConfig(fractions="1", steps=4, eval_every=2, batch_size=4, crop_s=2.0, augment="eq,noise")
    summary = boost_task(task_dir=tiny_suite / "tagging", model="short-chunk", encoder="tiny-test",
                         out_dir=tmp_path / "run", store=tmp_path / "store", config=config, seeds=1, progress=False)
    assert summary["cells"]["trained"] == 3
    result = json.loads((tmp_path / "run/results/boosted__f1__seed0.json").read_text())
    assert 0 <= result["test"]["headline"] <= 1


def test_baseline_cells_copied_from_another_run_are_the_cells_this_run_would_train(tiny_suite, tmp_path):
    config = BoostConfig(fractions="1", steps=6, eval_every=3, batch_size=4, crop_s=2.0)
    args = dict(task_dir=tiny_suite / "beat", model="beat-tcn", encoder="tiny-test", store=tmp_path / "store",
                seeds=1, config=config, progress=False)
    def scores(summary):  # the baseline's scores (its step time is a measurement, never equal twice)
        return {k: v for k, v in summary["systems"]["baseline"]["1"].items() if k != "step_s"}

    first = boost_task(out_dir=tmp_path / "a", **args)
    again = boost_task(out_dir=tmp_path / "b", **args)  # trained again from scratch: the same baseline
    assert scores(again) == scores(first)
    copied = boost_task(out_dir=tmp_path / "c", baseline_from=tmp_path / "a", **args)
    assert copied["cells"] == {"trained": 2, "copied": 1, "reused": 0}
    assert copied["systems"]["baseline"] == first["systems"]["baseline"]  # its record, step time included
    record = json.loads((tmp_path / "c/results/baseline__f1__seed0.json").read_text())
    assert record["copied_from"] == str((tmp_path / "a").resolve())
    assert (tmp_path / "c/models/baseline__f1__seed0/weights.safetensors").is_file()
    assert not list((tmp_path / "c/models").glob(".*copying"))
    from mirkit.bench.boost_report import write_boost_report

    assert "copied here (`--baseline-from`" in write_boost_report(tmp_path / "c")[0].read_text()
    with pytest.raises(ConfigError, match="config.steps"):
        boost_task(out_dir=tmp_path / "d", baseline_from=tmp_path / "a", **{**args, "config": replace(config, steps=7)})
    with pytest.raises(ConfigError, match="no boost run there"):
        boost_task(out_dir=tmp_path / "e", baseline_from=tmp_path / "nothing", **args)
