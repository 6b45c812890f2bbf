"""The offline suite: builds, validates, is deterministic, and its labels agree with the audio."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mirkit.data.suite import choose_soundfonts
from mirkit.errors import ConfigError
from tests.conftest import requires_package

pytestmark = requires_package("tinysoundfont")


def test_a_tilt_tilts_and_keeps_time():
    from mirkit.audio.effects import tilt

    rate = 16000
    t = np.arange(rate) / rate
    low, high = np.sin(2 * np.pi * 250 * t), np.sin(2 * np.pi * 4000 * t)
    up = tilt((low + high).astype(np.float32), rate, db_per_octave=2.0)
    spectrum = np.abs(np.fft.rfft(up))
    ratio_db = 20 * np.log10(spectrum[4000] / spectrum[250])  # 1 Hz bins: 4 octaves apart, 2 dB each
    assert ratio_db == pytest.approx(8.0, abs=0.1) and up.shape == low.shape
    assert np.argmax(np.correlate(up[:2000], (low + high)[:2000], "full")) == 1999  # no delay


def test_unknown_or_missing_soundfonts_are_named():
    with pytest.raises(ConfigError, match="unknown soundfont 'gm'"):
        choose_soundfonts("gm")


from mirkit.kinds.key import MAJOR_PROFILE as _MAJOR  # noqa: E402
from mirkit.kinds.key import MINOR_PROFILE as _MINOR
from mirkit.kinds.key import krumhansl_key


def test_key_profile_helper_detects_a_mismatch():
    chroma = np.roll(_MAJOR, 7)  # G major
    assert krumhansl_key(chroma) == "G major" and krumhansl_key(np.roll(_MINOR, 9)) == "A minor"


def test_chorale_labels_come_from_signature_and_final_bass():
    from mirkit.data.chorales import label_from_signature

    assert label_from_signature(1, 7) == (7, "major")  # one sharp, ends on G: G major
    assert label_from_signature(1, 4) == (4, "minor")  # one sharp, ends on E: E minor
    assert label_from_signature(-2, 2) is None  # two flats ending on D: modal, dropped
    assert label_from_signature(-3, 0) == (0, "minor")


def test_chorale_cache_serves_a_larger_request_by_parsing_more(tmp_path, monkeypatch):
    pytest.importorskip("music21", reason="music21 is installed by scripts/setup.sh")
    from mirkit.data import chorales

    monkeypatch.setenv("MIRKIT_CACHE", str(tmp_path))
    few = chorales.load_chorales(limit=3)
    more = chorales.load_chorales(limit=6)
    assert json.loads((tmp_path / "chorales-v2.json").read_text())["parsed"] == 6  # parsed more, not reused
    assert {c.name for c in few} <= {c.name for c in more}
    assert [c.name for c in chorales.load_chorales(limit=3)] == [c.name for c in few]  # served from the cache


def test_folk_song_labels_come_from_signature_and_final_note():
    pytest.importorskip("music21", reason="music21 is installed by scripts/setup.sh")
    from mirkit.data.folksongs import parse_song

    head = "X:1\nT: test\nN: Q0001\nM: 4/4\nL: 1/4\nK: G\n"
    major = parse_song("t:1", head + "G A B c | d B G A | B c d B | G4 |]\n")
    minor = parse_song("t:2", head + "E F G A | B G E F | G A B G | E4 |]\n")
    modal = parse_song("t:3", head + "A B c d | e c A B | c d e c | A4 |]\n")  # ends on A: neither tonic
    assert (major.tonic, major.mode) == (7, "major") and (minor.tonic, minor.mode) == (4, "minor")
    assert modal is None and major.tune == minor.tune == "essen:Q0001"  # variants of one song share a split


def test_stratified_splits_give_every_group_every_split():
    from mirkit.data.manifest import stratified_splits

    groups = [g for g in ("rock", "swing", "waltz") for _ in range(3)] + ["solo"] * 20
    splits = stratified_splits(groups, seed=0)
    for group in ("rock", "swing", "waltz"):
        assert sorted(s for g, s in zip(groups, splits) if g == group) == ["test", "train", "valid"]
    solo = [s for g, s in zip(groups, splits) if g == "solo"]
    assert solo.count("test") == 3 and solo.count("valid") == 3 and solo.count("train") == 14
    assert stratified_splits(groups, seed=0) == splits != stratified_splits(groups, seed=1)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(beats=[0.0, 0.5, 9.0]), "outside the"),
    (lambda d: d.update(bpm=100.0), "disagree with the tempo label"),
    (lambda d: d.update(downbeats=[0.25]), "not all of them are beats"),
    (lambda d: d.update(meter=3), "not every 3 beats"),
    (lambda d: d.update(beats=[1.0]), "at least two"),
    (lambda d: d.update(beats=None), "missing"),
])
def test_each_beat_problem_is_named(change, message):
    from mirkit.data.annotations import beat_grid
    from mirkit.kinds.beat import beat_problem

    labels = {"bpm": 120.0, **beat_grid(bpm=120.0, beats_per_bar=4, duration_s=4.0)}
    assert beat_problem(labels, duration_s=4.0) is None
    change(labels)
    assert message in beat_problem(labels, duration_s=4.0)


def test_chords_of_pitch_classes_and_segments():
    from mirkit.data.annotations import chord_of, chords_on_beats
    from mirkit.kinds.chords import chord_problem

    assert [chord_of(s) for s in ({0, 4, 7}, {9, 0, 4}, {7, 11, 2, 5}, {11, 2, 5}, {0, 4}, set(), {0, 1, 2})] == \
        ["C:maj", "A:min", "G:7", "B:dim", "X", "N", "X"]
    notes = [(60, 0.0, 1.0), (64, 0.0, 1.0), (67, 0.0, 1.0), (57, 1.0, 2.0), (60, 1.0, 2.0), (64, 1.0, 2.0)]
    segments = chords_on_beats(notes, beat_s=0.5, duration_s=2.5)
    assert segments == [[0.0, 1.0, "C:maj"], [1.0, 2.0, "A:min"], [2.0, 2.5, "N"]]
    assert chord_problem({"chords": segments}, duration_s=2.5) is None
    assert "after the" in chord_problem({"chords": segments}, duration_s=2.0)
    assert "Harte" in chord_problem({"chords": [[0.0, 1.0, "Cmajor"]]}, duration_s=2.0)


def test_data_tasks_lists_the_time_resolved_tasks(capsys):
    import argparse

    from mirkit.cli.data_cmd import run_tasks

    assert run_tasks(argparse.Namespace()) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert all("time-resolved" in lines[t] for t in ("beat", "chords", "transcription"))
    assert "24 classes" in lines["key"] and "continuous" in lines["tempo"]
