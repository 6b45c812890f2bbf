"""Analysis bundles and outputs without training: task and encoder lists, output names, summary rows."""

from __future__ import annotations

import pytest

from mirkit.errors import ConfigError, UnknownNameError


def test_task_lists_are_checked_and_kept_in_registry_order():
    from mirkit.analysis.bundle import ANALYSIS_TASKS, parse_tasks

    assert parse_tasks(None) == parse_tasks("all") == list(ANALYSIS_TASKS)
    assert parse_tasks("tags, key") == ["key", "tags"]
    with pytest.raises(UnknownNameError, match="beats"):
        parse_tasks("key,beat")


def test_candidate_encoders_parse_or_say_the_expected_form():
    from mirkit.analysis.train import parse_encoders

    assert parse_encoders("key=logmel+chroma, beats=musicnn-mtt") == {"key": ("logmel", "chroma"),
                                                                     "beats": ("musicnn-mtt",)}
    assert parse_encoders(None) == {}
    with pytest.raises(ConfigError, match="expected TASK=ENCODER"):
        parse_encoders("key:logmel")
    with pytest.raises(UnknownNameError):
        parse_encoders("mood=logmel")


def test_output_names_keep_folders_and_never_collide(tmp_path):
    from mirkit.analysis.outputs import output_names

    (tmp_path / "lib" / "live").mkdir(parents=True)
    paths = [str(tmp_path / "lib" / "a.flac"), str(tmp_path / "lib" / "live" / "a.flac"), str(tmp_path / "x" / "a.wav")]
    names = output_names(paths, [tmp_path / "lib", tmp_path / "x" / "a.wav"])
    assert names == {paths[0]: "a", paths[1]: "live/a", paths[2]: "a-2"}


def test_summary_row_counts_events_and_leaves_missing_tasks_empty():
    from mirkit.analysis.outputs import summary_row

    result = {"path": "s.flac", "duration_s": 3.0, "key": {"key": "D minor", "confidence": 0.8},
              "beats": {"beats": [0.5, 1.0, 1.5], "downbeats": [0.5], "tempo_bpm": 120.0},
              "instrument": {"instrument": "reed", "scores": {"reed": 0.7, "brass": 0.2}}}
    row = summary_row(result, "s.json")
    assert (row["key"], row["tempo_bpm"], row["beats"], row["downbeats"]) == ("D minor", 120.0, 3, 1)
    assert (row["instrument"], row["instrument_score"], row["chords"], row["notes"]) == ("reed", 0.7, None, None)


def test_filters_are_read_as_a_user_writes_them_and_mask_rows():
    from mirkit.retrieval.analysis_fields import TrackFilter, parse_where

    where = parse_where("D minor, 110-130 BPM, piano")
    assert where == TrackFilter(tonic="D", mode="minor", bpm_min=110.0, bpm_max=130.0, instrument="keyboard")
    assert parse_where("Bb") == TrackFilter(tonic="A#") and parse_where("f# maj").mode == "major"
    assert parse_where("120 bpm").bpm_min == pytest.approx(115.2) and not parse_where("  ")
    rows = [{"key": "D minor", "tempo_bpm": 120.0, "instruments": ["keyboard", "string"]},
            {"key": "D major", "tempo_bpm": 120.0, "instruments": ["keyboard"]},
            {"key": "D minor", "tempo_bpm": 90.0, "instruments": ["keyboard"]},
            {"key": None, "tempo_bpm": None, "instruments": None}]
    assert where.mask(rows).tolist() == [True, False, False, False]
    assert parse_where("D").mask(rows).tolist() == [True, True, True, False]
    with pytest.raises(ConfigError, match="'loud' is not a key .* a tempo .* or an instrument"):
        parse_where("D minor, loud")
