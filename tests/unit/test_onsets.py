"""The onset kind (``mirkit/kinds/onsets.py``): targets, decoding, the metric and the task derived
from rendered note lists. Its suite run (probe, peer, predict, bench) is in the integration tier."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mirkit.errors import ConfigError
from mirkit.kinds import PEERS, frame_kind, peers_of_kind
from mirkit.kinds.onsets import MERGE_S, merged, onsets_from_notes
from mirkit.metrics.onsets import evaluate_onsets


def test_the_onset_metric_is_mir_evals_with_a_50_ms_window():
    import mir_eval

    reference, estimate = [0.5, 1.0, 2.0], [0.52, 1.2, 2.04, 3.0]
    scores = evaluate_onsets([reference], [estimate])
    assert scores["f_measure"] == pytest.approx(mir_eval.onset.f_measure(np.array(reference), np.array(estimate))[0])
    assert (scores["precision"], scores["recall"]) == (pytest.approx(2 / 4), pytest.approx(2 / 3))
    assert evaluate_onsets([[], [1.0]], [[], [1.0]])["f_measure"] == 1.0  # nothing to find, nothing found: perfect
    assert evaluate_onsets([[1.0]], [[]])["f_measure"] == 0.0
    with pytest.raises(ConfigError, match="milliseconds"):
        evaluate_onsets([[500.0, 40000.0]], [[500.0]])
    with pytest.raises(ConfigError, match="sorted"):
        evaluate_onsets([[2.0, 1.0]], [[1.0]])


def test_onsets_come_from_note_starts_with_chords_merged():
    notes = [{"onset_s": 1.0, "offset_s": 2.0, "pitch": 60}, {"onset_s": 1.01, "offset_s": 2.0, "pitch": 64},
             {"onset_s": 0.5, "offset_s": 0.9, "pitch": 67}, {"onset_s": 1.0 + MERGE_S + 0.01, "offset_s": 3, "pitch": 72}]
    assert onsets_from_notes({"notes": notes}) == {"onsets": [0.5, 1.0, round(1.0 + MERGE_S + 0.01, 3)]}
    assert merged([]) == [] and merged([0.3, 0.1]) == [0.1, 0.3]


def test_targets_decode_back_to_the_onsets_and_labels_are_checked():
    kind = frame_kind("onsets")
    rate, times = 100.0, np.arange(300) / 100.0
    labels = {"onsets": [0.25, 0.8, 1.5, 2.6]}
    target = kind.encode(labels, times, rate_hz=rate)
    assert target.shape == (300, 1) and target[25, 0] == 1.0 and target[24, 0] == target[26, 0] == 0.5
    decoded = kind.decode(target, times, rate_hz=rate)
    assert np.allclose(decoded["onsets"], labels["onsets"])
    assert kind.score([labels], [decoded])["f_measure"] == 1.0
    assert kind.to_row(decoded) == {"onsets": labels["onsets"]}
    assert kind.label_problem({"onsets": [1.0, 0.5]}, duration_s=3.0) == "onsets times are not increasing"
    assert "outside the" in kind.label_problem({"onsets": [0.5, 9.0]}, duration_s=3.0)
    assert "missing" in kind.label_problem({}, duration_s=3.0)


def test_predict_writes_one_onset_per_line(tmp_path):
    kind = frame_kind("onsets")
    kind.write_files(tmp_path / "song", {"onsets": [0.25, 1.5]})
    assert (tmp_path / "song.onsets.txt").read_text() == "0.250\n1.500\n"


def test_librosa_onset_detector_is_the_onsets_peer():
    assert [p.name for p in peers_of_kind("onsets")] == ["librosa-onsets"]
    spec = PEERS.get("librosa-onsets")
    rate = spec.sample_rate
    y = np.zeros(rate * 3, dtype=np.float32)
    for start in (0.5, 1.25, 2.0):  # three clicks of decaying noise
        k = int(start * rate)
        y[k: k + 2000] = np.random.default_rng(0).standard_normal(2000) * np.exp(-np.arange(2000) / 300)
    found = spec.estimator()(y)
    assert frame_kind("onsets").score([{"onsets": [0.5, 1.25, 2.0]}], [found])["f_measure"] > 0.8, found


def test_the_suite_derives_the_onsets_task_from_the_transcription_notes(tmp_path):
    from mirkit.data.manifest import ManifestEntry, write_manifest
    from mirkit.data.task_folder import derive_task, load_task, write_task_info
    from mirkit.data.tasks import TASKS

    source = tmp_path / "suite" / "transcription"
    source.mkdir(parents=True)
    notes = [{"onset_s": 0.5, "offset_s": 1.0, "pitch": 60}, {"onset_s": 0.5, "offset_s": 1.2, "pitch": 64}]
    (source / "a.notes.json").write_text(json.dumps(notes))
    write_manifest(source / "manifest.jsonl", [ManifestEntry(
        path="audio/a.flac", split="test", labels={"notes": "a.notes.json", "piano_roll": "a.roll.npz"},
        duration_s=2.0, source="generated", licence="CC0", piece="a")])
    write_task_info(source, TASKS.get("transcription"))
    entries = derive_task(TASKS.get("onsets"), source_dir=source, out_dir=tmp_path / "suite" / "onsets")
    assert entries[0].labels == {"onsets": [0.5]} and entries[0].path == "../transcription/audio/a.flac"
    task = load_task(tmp_path / "suite" / "onsets")
    assert (task.kind.name, task.label, task.name) == ("onsets", "onsets", "onsets")
    with pytest.raises(ConfigError, match="not derived"):
        derive_task(TASKS.get("key"), source_dir=source, out_dir=tmp_path / "x")


def test_onset_labels_follow_augmentations_like_the_other_time_labels():
    from mirkit.data.label_rules import check_rules, relabel_copy, relabel_timed

    check_rules("onsets", "onsets", ("pitch", "stretch", "eq"))  # every augmentation has a rule
    labels = {"onsets": [0.5, 1.0, 2.0]}
    same, scale = relabel_timed("onsets", labels, {"semitones": 3.0, "rate": 1.25})
    assert same == labels and scale == 1.25  # a pitch shift keeps onsets; a speed change scales the frame grid
    assert relabel_copy("onsets", labels, {"rate": 2.0}, duration_s=0.9) == {"onsets": [0.25, 0.5]}
