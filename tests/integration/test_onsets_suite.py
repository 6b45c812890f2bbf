"""The onset kind, added as one module (``mirkit/kinds/onsets.py``), runs through every pipeline like the
other frame-level kinds: the suite derives its task, the bench probes it and runs its peer, the report
shows it, ``mirkit predict`` writes onset lists and ``mirkit robustness`` scores it on perturbed audio."""

from __future__ import annotations

import json

import pytest

from mirkit.cli.main import main


def test_onsets_are_benchmarked_predicted_and_perturbed_like_the_other_tasks(tiny_suite, tmp_path):
    from mirkit.data.task_folder import load_task

    task = load_task(tiny_suite / "onsets")
    assert task.kind.name == "onsets" and (tiny_suite / "onsets" / "task.json").is_file()
    transcription = load_task(tiny_suite / "transcription")
    assert len(task.entries()) == len(transcription.entries())  # one onsets clip per transcription clip
    runs = tmp_path / "runs"
    code = main(["bench", "--suite", str(tiny_suite), "--out", str(runs), "--encoders", "logmel", "--tasks", "onsets",
                 "--frame-seeds", "1", "--no-weighted", "--no-progress", "--report"])
    assert code == 0
    summary = json.loads((runs / "tasks" / "onsets" / "logmel" / "summary.json").read_text())
    assert summary["kind"] == "onsets" and summary["jobs"]["trained"] == 1
    assert 0 < summary["layers"]["layer0"]["f_measure"]["mean"] <= 1, summary["layers"]
    peer = json.loads((runs / "peers" / "onsets__librosa-onsets.json").read_text())
    assert peer["clips"] == sum(e.split == "test" for e in task.entries()) and peer["test"]["f_measure"] > 0.3
    report = (runs / "report.md").read_text()
    assert "onsets" in report and "librosa-onsets" in report and "logmel" in report
    # the bench's pair folder is an ordinary probe run: predict writes one onset list per file
    audio = sorted((tiny_suite / "transcription" / "audio").glob("*.flac"))[0]
    assert main(["predict", "--model", str(runs / "tasks" / "onsets" / "logmel"), "--input", str(audio), "--out",
                 str(tmp_path / "pred"), "--store", str(runs / "features"), "--no-progress"]) == 0
    line = json.loads((tmp_path / "pred" / "predictions.jsonl").read_text().splitlines()[0])
    written = (tmp_path / "pred" / f"{audio.stem}.onsets.txt").read_text().split()
    assert [float(t) for t in written] == line["onsets"] and line["kind"] == "onsets"
    # robustness reads the kind too: the run decoded and scored on perturbed test audio
    assert main(["robustness", "--bench", str(runs), "--perturbations", "level-minus-12db", "--no-progress"]) == 0
    scored = json.loads((runs / "robustness" / "results" / "onsets__logmel.json").read_text())
    assert scored["kind"] == "onsets" and scored["clean"]["mean"] == pytest.approx(
        summary["layers"]["layer0"]["f_measure"]["mean"], abs=1e-9)
    assert "level-minus-12db" in scored["perturbed"]
