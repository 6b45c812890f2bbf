"""`mirkit bench` and `mirkit report` end to end on the tiny suite with the tiny test encoder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "mirkit.cli.main"]


def _cli(*args):
    return subprocess.run([*CLI, *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    pytest.importorskip("tinysoundfont", reason="weights tier: tinysoundfont is installed by scripts/setup.sh")
    from mirkit.data.suite import build_suite

    out = tmp_path_factory.mktemp("bench") / "suite"
    build_suite(suite="tiny", out_dir=out, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False)
    return out


def test_bench_runs_resumes_records_failures_and_reports(suite, tmp_path):
    runs = tmp_path / "runs"
    args = ["bench", "--suite", str(suite), "--out", str(runs), "--encoders", "tiny-test,mert-v1-95m",
            "--tasks", "genre,tempo", "--seeds", "2", "--peers", "librosa-tempo,librosa-ks", "--no-progress"]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    # tiny-test: 3 layers + the weighted sum of its equal-width layers, 2 seeds, 2 tasks
    results = sorted(runs.glob("tasks/*/tiny-test/results/*.json"))
    layers = json.loads((runs / "tasks" / "genre" / "tiny-test" / "summary.json").read_text())["layers"]
    assert len(results) == 2 * 2 * len(layers) and "weighted" in layers
    assert "4 encoder x task pairs" in first.stdout and "2 failed" in first.stdout
    # the hub encoder has no weights here: recorded with its reason, the rest went on
    failure = json.loads((runs / "failures" / "genre__mert-v1-95m.json").read_text())
    assert failure["name"] == "mert-v1-95m" and "WeightsNotFoundError" in failure["error"]
    peer = json.loads((runs / "peers" / "tempo__librosa-tempo.json").read_text())
    assert peer["clips"] > 0 and 0 <= peer["test"]["acc2"] <= 1 and "librosa-tempo" in first.stdout
    assert not (runs / "peers" / "genre__librosa-ks.json").exists()  # key peers run on key tasks only

    mtimes = {p: p.stat().st_mtime_ns for p in results}
    second = _cli(*args, "--strict")
    assert second.returncode == 1  # --strict: the failed pairs count
    assert f"0 probe jobs trained, {len(results)} reused" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in results} == mtimes
    forced = _cli(*args, "--force")
    assert forced.returncode == 0 and f"{len(results)} probe jobs trained" in forced.stdout

    other = _cli("bench", "--suite", str(suite), "--out", str(runs), "--encoders", "tiny-test", "--tasks", "genre",
                 "--seeds", "3", "--no-progress")
    assert other.returncode == 2 and "seeds=2" in other.stderr and "--force" in other.stderr

    report = _cli("report", str(runs))
    assert report.returncode == 0, report.stderr
    md = (runs / "report.md").read_text()
    page = (runs / "report.html").read_text()
    for text in ("## Task: genre", "## Task: tempo", "tiny-test", "librosa-tempo", "weighted sum of", "## Cost",
                 "mert-v1-95m", "WeightsNotFoundError", "Peers run: librosa-tempo"):
        assert text in md, text
    assert page.count("<table>") >= 4 and "data:image/png;base64," in page
    pngs = sorted((runs / "plots").glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    # a bench pair folder is an ordinary probe run: `mirkit predict` applies it
    new = tmp_path / "new"
    new.mkdir()
    for path in sorted((suite / "genre" / "audio").glob("*.flac"))[:2]:
        shutil.copy(path, new / path.name)
    predicted = _cli("predict", "--model", str(runs / "tasks" / "genre" / "tiny-test"), "--input", str(new),
                     "--out", str(tmp_path / "p.jsonl"), "--no-progress")
    assert predicted.returncode == 0 and "Wrote 2 predictions" in predicted.stdout


def test_unknown_task_or_encoder_is_named(suite, tmp_path):
    bad_task = _cli("bench", "--suite", str(suite), "--out", str(tmp_path / "r"), "--tasks", "emotion")
    assert bad_task.returncode == 2 and "not a benchmarked task" in bad_task.stderr
    bad_encoder = _cli("bench", "--suite", str(suite), "--out", str(tmp_path / "r"), "--encoders", "musicnn")
    assert bad_encoder.returncode == 2 and "Did you mean" in bad_encoder.stderr
    not_suite = _cli("bench", "--suite", str(tmp_path), "--out", str(tmp_path / "r"))
    assert not_suite.returncode == 2 and "mirkit data build" in not_suite.stderr


def test_bench_runs_frame_level_tasks_with_their_own_seed_count_and_peers(suite, tmp_path):
    runs = tmp_path / "runs"
    args = ["bench", "--suite", str(suite), "--out", str(runs), "--encoders", "logmel", "--tasks", "genre,beat,chords",
            "--seeds", "2", "--frame-seeds", "1", "--peers", "librosa-beat-track,chroma-templates", "--no-progress",
            "--report"]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    assert len(list(runs.glob("tasks/genre/logmel/results/*.json"))) == 2
    assert len(list(runs.glob("tasks/beat/logmel/results/*.json"))) == 1
    record = json.loads(next(runs.glob("tasks/chords/logmel/results/*.json")).read_text())
    assert record["pooling"] == "none" and 0 <= record["test"]["majmin"] <= 1
    assert json.loads((runs / "bench.json").read_text())["frame_seeds"] == 1
    for peer in ("beat__librosa-beat-track", "chords__chroma-templates"):
        assert json.loads((runs / "peers" / f"{peer}.json").read_text())["clips"] > 0
    md = (runs / "report.md").read_text()
    for text in ("## Task: beat", "## Task: chords", "every frame at 43.1 fps", "chroma-templates", "downbeat_f_measure"):
        assert text in md, text
    other = _cli(*[a if a != "1" else "2" for a in args])
    assert other.returncode == 2 and "frame_seeds=1" in other.stderr


def test_real_tempo_scores_each_beat_probe_and_the_tempo_peers(suite, tmp_path):
    from mirkit.data.manifest import read_manifest, write_manifest

    # a stand-in for `mirkit data music`'s tempo_real: test-only recordings with a tempo label
    real = tmp_path / "tempo_real"
    real.mkdir()
    entries = [e for e in read_manifest(suite / "tempo" / "manifest.jsonl") if e.split == "test"]
    for entry in entries:
        entry.path = str((suite / "tempo" / entry.path).resolve())
        entry.labels = {"bpm": entry.labels["bpm"]}
    write_manifest(real / "manifest.jsonl", entries)
    runs = tmp_path / "runs"
    done = _cli("bench", "--suite", str(suite), "--out", str(runs), "--encoders", "logmel,mfcc", "--tasks", "beat",
                "--seeds", "1", "--peers", "librosa-tempo", "--real-tempo", str(real), "--no-progress", "--report")
    assert done.returncode == 0, done.stderr
    for name in ("logmel", "mfcc", "librosa-tempo"):
        result = json.loads((runs / "real_tempo" / f"{name}.json").read_text())
        assert result["clips"] == len(entries) and 0 <= result["test"]["acc1"] <= result["test"]["acc2"] <= 1
    assert "## Real recordings: tempo (test-only)" in (runs / "report.md").read_text()
    entries[0].split = "train"
    write_manifest(real / "manifest.jsonl", entries)
    refused = _cli("bench", "--suite", str(suite), "--out", str(runs), "--encoders", "logmel,mfcc", "--tasks", "beat",
                   "--seeds", "1", "--peers", "librosa-tempo", "--real-tempo", str(real), "--no-progress")
    assert refused.returncode == 2 and "test-only" in refused.stderr


def test_robustness_scores_each_pair_and_the_report_shows_it_with_the_twin_table(suite, tmp_path):
    runs = tmp_path / "runs"
    bench = _cli("bench", "--suite", str(suite), "--out", str(runs), "--encoders", "tiny-test,random:tiny-test",
                 "--tasks", "genre", "--seeds", "2", "--peers", "none", "--no-progress")
    assert bench.returncode == 0, bench.stderr
    scored = _cli("robustness", "--bench", str(runs), "--perturbations", "level-minus-12db,pink-noise-10db",
                  "--no-progress")
    assert scored.returncode == 0, scored.stderr
    assert "Scored 2 runs on perturbed test audio (0 failed)" in scored.stdout
    for name in ("tiny-test", "random_tiny-test"):
        result = json.loads((runs / "robustness" / "results" / f"genre__{name}.json").read_text())
        assert set(result["perturbed"]) == {"level-minus-12db", "pink-noise-10db"} and result["clean_features_reused"]
    # the perturbed audio is written once per task and shared by both encoders
    assert len(list((runs / "robustness" / "audio" / "genre").iterdir())) == 2
    bad = _cli("robustness", "--bench", str(runs), "--perturbations", "pinknoise", "--no-progress")
    assert bad.returncode == 2 and "unknown perturbation 'pinknoise'" in bad.stderr
    report = _cli("report", str(runs))
    assert report.returncode == 0, report.stderr
    md = (runs / "report.md").read_text()
    for text in ("## Robustness: genre", "pink-noise-10db", "Most robust (smallest worst-case drop)", "Best worst case",
                 "## Pretrained vs random-init twin", "tiny-test beats its random-init twin on"):
        assert text in md, text


def test_frame_level_tasks_can_use_the_temporal_head(suite, tmp_path):
    runs = tmp_path / "runs"
    args = ["bench", "--suite", str(suite), "--out", str(runs), "--encoders", "logmel", "--tasks", "beat",
            "--seeds", "1", "--frame-model", "tcn", "--peers", "none", "--no-weighted", "--no-progress", "--report"]
    done = _cli(*args)
    assert done.returncode == 0, done.stderr
    record = json.loads(next(runs.glob("tasks/beat/logmel/results/*.json")).read_text())
    assert record["head"] == "tcn"
    assert json.loads((runs / "bench.json").read_text())["frame_probe"] == "tcn"
    assert "(tcn head)" in (runs / "report.md").read_text()
    linear = _cli(*[a for a in args if a not in ("--frame-model", "tcn")])
    assert linear.returncode == 2 and "frame_probe='tcn'" in linear.stderr  # heads never mix in one folder


def test_worker_processes_give_the_results_one_process_gives(suite, tmp_path):
    common = ["--suite", str(suite), "--encoders", "tiny-test,logmel,mert-v1-95m", "--tasks", "genre,tagging,beat",
              "--seeds", "2", "--frame-seeds", "1", "--peers", "librosa-beat-track"]
    one = _cli("bench", "--out", str(tmp_path / "one"), *common, "--no-progress")
    two = _cli("bench", "--out", str(tmp_path / "two"), *common, "--jobs", "2")
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert "9 encoder x task pairs" in two.stdout and "3 failed" in two.stdout  # the hub encoder has no weights
    assert json.loads((tmp_path / "two" / "failures" / "beat__mert-v1-95m.json").read_text())["name"] == "mert-v1-95m"
    for task in ("genre", "tagging", "beat"):  # every pair's line, printed by the parent as units finish
        assert f"  {task:<10} logmel" in two.stdout
    assert "peer librosa-beat-track" in two.stdout
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").glob("tasks/*/*/results/*.json"))
    assert files and files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").glob("tasks/*/*/results/*.json"))
    for path in files:  # one thread per worker instead of the default pool: the same probes, up to float order
        a, b = (json.loads((tmp_path / run / path).read_text()) for run in ("one", "two"))
        assert a["valid"]["headline"] == pytest.approx(b["valid"]["headline"], abs=1e-3), path
    bad = _cli("bench", "--out", str(tmp_path / "bad"), *common, "--jobs", "0")
    assert bad.returncode == 2 and "jobs=0" in bad.stderr
