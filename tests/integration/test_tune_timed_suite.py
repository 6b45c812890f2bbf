"""Suite-level tests moved from ``tests/unit/test_tune_timed.py`` (they build the tiny suite): `mirkit tune` on the time-resolved tasks: every method trains a frame-level head with the encoder in"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from mirkit.errors import ConfigError
from mirkit.tune import get_method, load_tuned, tune_task
from mirkit.tune.predict import predict_tuned
from mirkit.tune.timed import FrameTuneModel
from tests.unit.test_tune_timed import CNN_METHODS, FAST, TASKS


@pytest.mark.parametrize("method", CNN_METHODS)
def test_every_method_tunes_a_frame_head(tiny_suite, tmp_path, method):
    task = TASKS[CNN_METHODS.index(method) % 3]
    summary = tune_task(task_dir=tiny_suite / task, encoder="tiny-test", out_dir=tmp_path, seeds=1, progress=False,
                        config=replace(FAST, method=method))
    stats = summary["layers"][method]
    assert 0 <= stats["headline"]["mean"] <= 1 and summary["kind"] == task
    result = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    assert result["pooling"] == "none" and "covering each clip" in result["window"]
    headline = {"beat": "f_measure", "chords": "majmin", "transcription": "note_f1"}[task]
    assert result["test"]["headline"] == result["test"][headline] and result["cost"]["steps"] > 0
    if method == "scratch":  # keeps the log-mel frame rate on a time-resolved task
        assert result["frame_rate_hz"] == pytest.approx(22050 / 512)
        assert json.loads((tmp_path / "tune.json").read_text())["config"]["options"]["scratch_time_pool"] == "no"


@pytest.mark.parametrize("method", ["prompt", "ia3"])
def test_transformer_methods_keep_the_frame_grid(tiny_suite, hubert, tmp_path, method):
    settings = {"prompt": {"prompt_tokens": 3}}.get(method, {})
    config = replace(FAST, method=method, options=get_method(method).config_cls(**settings))
    summary = tune_task(task_dir=tiny_suite / "beat", encoder="hubert-base", weights_dir=hubert, out_dir=tmp_path / "run",
                        config=config, seeds=1, progress=False)
    assert 0 <= summary["layers"][method]["headline"]["mean"] <= 1
    model, _, meta = load_tuned(tmp_path / "run")
    assert isinstance(model, FrameTuneModel) and len(meta["layers"]) == 3  # the weighted hidden states


def test_a_tuned_head_learns_chords_and_predicts_new_audio(tiny_suite, tmp_path):
    config = replace(FAST, method="probe", head="tcn", max_epochs=5, crop_s=2.0, patience=5)
    summary = tune_task(task_dir=tiny_suite / "chords", encoder="chroma", out_dir=tmp_path / "run", config=config,
                        seeds=1, progress=False)
    assert summary["layers"]["probe"]["majmin"]["mean"] > 0.3, summary  # 25 classes: chance is near 0.04
    audio = sorted((tiny_suite / "key" / "audio").glob("*.flac"))[:2]
    (tmp_path / "new").mkdir()
    for file in audio:
        shutil.copy(file, tmp_path / "new" / file.name)
    (tmp_path / "new" / "broken.wav").write_bytes(b"not audio")
    rows, skipped = predict_tuned(run_dir=tmp_path / "run", source=tmp_path / "new", out_path=tmp_path / "pred",
                                  progress=False)
    assert rows == 2 and [p for p, _ in skipped] == [str(tmp_path / "new" / "broken.wav")]
    lab = (tmp_path / "pred" / f"{audio[0].stem}.lab").read_text().splitlines()
    assert lab and all(len(line.split("\t")) == 3 for line in lab)
    line = json.loads((tmp_path / "pred" / "predictions.jsonl").read_text().splitlines()[0])
    assert line["method"] == "probe" and line["chords"][0][0] == 0.0
    with pytest.raises(ConfigError, match="writes a folder"):
        predict_tuned(run_dir=tmp_path / "run", source=tmp_path / "new", out_path=tmp_path / "p.jsonl", progress=False)


def test_resumed_frame_run_equals_uninterrupted(tiny_suite, tmp_path):
    config = replace(FAST, method="finetune", max_epochs=2, checkpoint_every=1, head="mlp")
    args = dict(task_dir=tiny_suite / "beat", encoder="tiny-test", config=config, seeds=1, progress=False)
    tune_task(out_dir=tmp_path / "whole", **args)
    assert tune_task(out_dir=tmp_path / "killed", stop_after_steps=2, **args) == {"stopped": True}
    tune_task(out_dir=tmp_path / "killed", **args)
    whole, resumed = (json.loads(next((tmp_path / run / "results").glob("*.json")).read_text())
                      for run in ("whole", "killed"))
    assert resumed["cost"]["resumed_from_step"] >= 1 and whole["cost"]["resumed_from_step"] is None
    assert resumed["test"] == whole["test"] and resumed["history"] == whole["history"]


def test_bad_labels_are_skipped_and_clip_heads_are_refused(tiny_suite, tmp_path):
    task = tmp_path / "beat"
    shutil.copytree(tiny_suite / "beat", task)
    lines = (task / "manifest.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    entry["labels"]["beats"] = entry["labels"]["beats"][::-1]  # unsorted
    entry["path"] = str((tiny_suite / "beat" / entry["path"]).resolve())
    lines[0] = json.dumps(entry)
    (task / "manifest.jsonl").write_text("\n".join(json.dumps({**json.loads(l), "path": str(
        (tiny_suite / "beat" / json.loads(l)["path"]).resolve())}) for l in lines) + "\n")
    tune_task(task_dir=task, encoder="tiny-test", out_dir=tmp_path / "run", config=FAST, seeds=1, progress=False)
    result = json.loads(next((tmp_path / "run" / "results").glob("*.json")).read_text())
    assert [s["path"] for s in result["skipped_clips"]] == [entry["path"]]
    assert "bad labels" in result["skipped_clips"][0]["reason"]
    with pytest.raises(ConfigError, match="--head tcn is a temporal head"):
        tune_task(task_dir=tiny_suite / "genre", encoder="tiny-test", out_dir=tmp_path / "g",
                  config=replace(FAST, head="tcn"), seeds=1, progress=False)
