"""`mirkit predict` as a new user meets it (issue #36): a task folder as input, a file-like name for a folder
output, and which check answers first."""

from __future__ import annotations

import json

import pytest

from mirkit.cli.main import main


@pytest.fixture(scope="module")
def beat_run(tiny_suite, tmp_path_factory):
    from mirkit.adapt.config import FrameProbeConfig, ProbeRunConfig
    from mirkit.adapt.run import probe_task

    out = tmp_path_factory.mktemp("runs")
    probe_task(ProbeRunConfig(task_dir=tiny_suite / "beat", encoder="logmel", out_dir=out / "beat", store=out / "features",
                              layers="0", seeds=1, probe=FrameProbeConfig(max_epochs=2), progress=False))
    return out / "beat"


def test_a_task_folder_as_input_is_read_as_its_manifest(beat_run, tiny_suite, tmp_path, capsys):
    from mirkit.data.manifest import read_manifest

    code = main(["predict", "--model", str(beat_run), "--input", str(tiny_suite / "beat"), "--out",
                 str(tmp_path / "beats"), "--no-progress"])
    lines = (tmp_path / "beats" / "predictions.jsonl").read_text().splitlines()
    clips = read_manifest(tiny_suite / "beat" / "manifest.jsonl")  # its audio lives in the tempo task's folder
    assert code == 0 and len(lines) == len(clips) > 0
    assert all(json.loads(line)["path"].endswith(".flac") for line in lines)


def test_nothing_predicted_is_an_error_unless_allowed(beat_run, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not audio")
    args = ["predict", "--model", str(beat_run), "--input", str(empty), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 1
    assert "no file of" in capsys.readouterr().err
    assert main([*args, "--allow-empty"]) == 0


def test_a_file_like_name_for_a_folder_output_is_refused_before_any_work(beat_run, tiny_suite, tmp_path, capsys):
    code = main(["predict", "--model", str(beat_run), "--input", str(tiny_suite / "beat"), "--out",
                 str(tmp_path / "beats.jsonl"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "writes a folder" in err and "--out" in err
    assert not (tmp_path / "beats.jsonl").exists()


def test_a_folder_that_is_no_run_says_so_whatever_the_output_name(beat_run, tmp_path, capsys):
    not_a_run = beat_run.parent / "features"  # a feature store, as a bench's tasks/beat/features/ would be
    for out in ("beats", "beats.jsonl"):
        code = main(["predict", "--model", str(not_a_run), "--input", str(tmp_path), "--out", str(tmp_path / out),
                     "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and "holds no probe results" in err, err
